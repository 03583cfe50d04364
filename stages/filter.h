// `filter(EXPR)`: keeps only the packets a BPF expression (tcpdump syntax) matches. Unlike a
// source's `filter=`, it can follow an event source or the merge, where it sees every packet.
#pragma once

#include <string>

#include "core/bpf_filter.h"
#include "core/transform.h"
#include "pipeline/stage.h"

namespace vei {

class PacketFilter final : public Transform {
 public:
  // Throws std::runtime_error with libpcap's message when the expression does not compile.
  PacketFilter(const std::string& expression, const TransformContext& context)
      : bpf_(expression, context.linktype, context.snaplen, context.swapped) {}
  TransformStats apply(Batch& batch) const override;

 private:
  BpfFilter bpf_;
};

class FilterStage final : public TransformStage {
 public:
  FilterStage();
  std::unique_ptr<Transform> make(const Node& node, const TransformContext& context) const override;
};

}  // namespace vei
