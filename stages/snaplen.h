// `snaplen(N)`: keeps at most N captured bytes of each packet, as `editcap -s N` does. The
// original length stays in the record, so decoders still see how long the packet was.
#pragma once

#include "core/transform.h"

namespace vei {

class SnaplenCutter final : public Transform {
 public:
  explicit SnaplenCutter(uint32_t length) : length_(length) {}
  TransformStats apply(Batch& batch) const override;

 private:
  uint32_t length_;
};

}  // namespace vei
