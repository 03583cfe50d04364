#include "core/bpf_filter.h"

#include <fmt/format.h>

#include <memory>
#include <stdexcept>

namespace vei {

BpfFilter::BpfFilter(const std::string& expression, uint32_t linktype, uint32_t snaplen) {
  const std::unique_ptr<pcap_t, decltype(&pcap_close)> dead(
      pcap_open_dead(static_cast<int>(linktype & 0x03FFFFFF), static_cast<int>(std::min(snaplen, 262144u))),
      pcap_close);
  if (!dead) throw std::runtime_error("libpcap could not create a filter context");
  if (pcap_compile(dead.get(), &program_, expression.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
    throw std::runtime_error(fmt::format("bad filter '{}': {}", expression, pcap_geterr(dead.get())));
}

BpfFilter::~BpfFilter() { pcap_freecode(&program_); }

}  // namespace vei
