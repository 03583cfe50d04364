// `merge`: where sources meet. The ordering it stands for is core/merger.h's; this is the stage.
#pragma once

#include "pipeline/stage.h"

namespace vei {

class MergeStage final : public MergerStage {
 public:
  MergeStage();
  void check(const Node& node) const override;
  MergeOptions options(const Node& node) const override;
};

}  // namespace vei
