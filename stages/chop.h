// `chop(N)`: removes the last N captured bytes of each packet, as `editcap -C -N` does; the
// original length stays in the record, as with `snaplen`.
#pragma once

#include "core/transform.h"
#include "pipeline/stage.h"

namespace vei {

class Chopper final : public Transform {
 public:
  explicit Chopper(uint32_t bytes) : bytes_(bytes) {}
  TransformStats apply(Batch& batch) const override;

 private:
  uint32_t bytes_;
};

class ChopStage final : public TransformStage {
 public:
  ChopStage();
  void check(const Node& node) const override;
  std::unique_ptr<Transform> make(const Node& node, const TransformContext& context) const override;
};

}  // namespace vei
