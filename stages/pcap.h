// `pcap(FILE)`: a capture file as a timeline source. The readers themselves (classic pcap in place,
// pcapng through libpcap) are in core/pcap_reader.h and core/pcapng_reader.h; this is the stage.
#pragma once

#include "pipeline/stage.h"

namespace vei {

class PcapStage final : public SourceStage {
 public:
  PcapStage();
  void check(const Node& node) const override;
  std::unique_ptr<TimelineSource> open(const Node& node, SourceOptions options,
                                       const SourceContext& context) const override;
};

}  // namespace vei
