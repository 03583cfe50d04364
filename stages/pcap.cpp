#include "stages/pcap.h"

#include "core/timeline_source.h"

namespace vei {

PcapStage::PcapStage()
    : SourceStage({"pcap", StageKind::timeline_source,
                   "Reads a capture file: classic pcap (little or big endian, micro- or nanosecond) through a "
                   "fast in-place reader, pcapng through libpcap; `-` reads standard input. Its packets are "
                   "mapped onto the output timeline: `at=` places its first packet relative to the first "
                   "source's first packet, `shift=` adds a constant, `rebase=none` keeps original times.",
                   [] {
                     std::vector<ParamSpec> params{
                         {"file", ParamType::input, "", "capture to read (`-` for standard input)", {}, true, true}};
                     for (auto& p : placement_params(
                              "place the first packet this long after the first source's first packet (implies rebase=first)", ""))
                       params.push_back(std::move(p));
                     params.push_back({"filter", ParamType::string, "",
                                       "BPF expression (tcpdump syntax); packets not matching are dropped"});
                     params.push_back({"disorder", ParamType::choice, "clamp",
                                       "what to do with a packet older than the one before it in this file: `clamp` it to the "
                                       "previous timestamp (output time never decreases), or `keep` it as it is",
                                       {"clamp", "keep"}});
                     return params;
                   }()}) {}

std::unique_ptr<TimelineSource> PcapStage::open(const Node& node, SourceOptions options, const SourceContext&) const {
  options.filter = param(node, "filter").text;
  options.clamp_disorder = param(node, "disorder").text != "keep";
  auto source = open_capture(param(node, "file").text, std::move(options));
  // The link type is known only now.
  try {
    source->compile_filter();
  } catch (const std::runtime_error& e) {
    throw ParamError(param(node, "filter"), e.what(), "filters use tcpdump's syntax: pcap-filter(7)");
  }
  return source;
}

}  // namespace vei

VEI_STAGE(pcap, vei::PcapStage)
