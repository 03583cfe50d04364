// `snaplen(N)`: keeps at most N captured bytes of each packet, as `editcap -s N` does. The
// original length stays in the record, so decoders still see how long the packet was.
#pragma once

#include "core/transform.h"
#include "pipeline/stage.h"

namespace vei {

class SnaplenCutter final : public Transform {
 public:
  explicit SnaplenCutter(uint32_t length) : length_(length) {}
  TransformStats apply(Batch& batch) const override;
  std::optional<uint32_t> max_caplen() const override { return length_; }

 private:
  uint32_t length_;
};

class SnaplenStage final : public TransformStage {
 public:
  SnaplenStage();
  void check(const Node& node) const override;
  std::unique_ptr<Transform> make(const Node& node, const TransformContext& context) const override;
};

}  // namespace vei
