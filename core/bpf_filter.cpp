#include "core/bpf_filter.h"

#include <fmt/format.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "core/pcap_format.h"

namespace vei {

namespace {

using Handle = std::unique_ptr<pcap_t, decltype(&pcap_close)>;
using Header = std::array<std::byte, pcap::file_header_size>;

// tcpdump -r compiles its filter against the savefile it opened, and two things of that file change
// the program: libpcap maps the header's LINKTYPE_ to its own DLT_ (LINKTYPE_RAW 101 is DLT_RAW 12
// on Linux; pcap_open_dead would take 101 for a DLT and refuse it), and for DLT_NULL and DLT_ENC it
// compares the address family in the byte order of the host that wrote the file (gencode.c,
// gen_linktype: `bpf_pcap->rfile && bpf_pcap->swapped`), since libpcap hands those packets over as
// the file holds them. A handle opened on a header alone, in the file's byte order, takes both from
// libpcap's own code.
Header savefile_header(uint32_t linktype, uint32_t snaplen, bool swapped) {
  const auto order = [&](auto v) { return swapped ? pcap::bswap(v) : v; };
  Header header{};
  const auto put = [&](size_t at, auto v) { std::memcpy(header.data() + at, &v, sizeof v); };
  put(0, order(uint32_t{0xa1b2c3d4}));
  put(4, order(uint16_t{2}));
  put(6, order(uint16_t{4}));
  put(16, order(snaplen));
  put(20, order(linktype));
  return header;
}

// The handle reads `header` until it is closed.
Handle open_header(Header& header) {
  FILE* file = fmemopen(header.data(), header.size(), "rb");
  if (!file) throw std::runtime_error("libpcap could not create a filter context");
  char error[PCAP_ERRBUF_SIZE] = "";
  Handle handle(pcap_fopen_offline(file, error), pcap_close);  // which closes the file from now on
  if (!handle) {
    std::fclose(file);
    throw std::runtime_error(fmt::format("libpcap could not create a filter context: {}", error));
  }
  return handle;
}

}  // namespace

BpfFilter::BpfFilter(const std::string& expression, uint32_t linktype, uint32_t snaplen, bool swapped) {
  Header header = savefile_header(linktype, snaplen, swapped);
  const Handle handle = open_header(header);
  if (pcap_compile(handle.get(), &program_, expression.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
    throw std::runtime_error(fmt::format("bad filter '{}': {}", expression, pcap_geterr(handle.get())));
}

BpfFilter::~BpfFilter() { pcap_freecode(&program_); }

}  // namespace vei
