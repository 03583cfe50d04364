// `pace`: releases packets at their time. The clock and the waiting are core/pacer.h's; this is
// the stage.
#pragma once

#include "pipeline/stage.h"

namespace vei {

class PaceStage final : public PacerStage {
 public:
  PaceStage();
  void check(const Node& node) const override;
  PaceOptions options(const Node& node) const override;
};

}  // namespace vei
