// libFuzzer target for core/pcapng_reader.h with the framing done: fuzz_pcapng feeds raw bytes,
// most of which fail at a block's length; here the input is a list of blocks whose contents the
// fuzzer chooses and whose lengths and trailers come out right, so that it reaches IDB options,
// time resolutions, packet fields and section changes. Each built file goes through the capture
// harness (fuzz/harness.h): from a regular file (scanned, then read) and from a pipe.
#include "core/pcapng_format.h"
#include "fuzz/harness.h"

namespace {

// The block types a choice byte picks from (its low 3 bits); 7 leaves the bytes unframed.
constexpr uint32_t block_types[] = {
    vei::pcapng::block::section_header,  vei::pcapng::block::interface_description, vei::pcapng::block::enhanced_packet,
    vei::pcapng::block::enhanced_packet, vei::pcapng::block::simple_packet,          vei::pcapng::block::packet,
    vei::pcapng::block::name_resolution,
};

// Input: {choice, size, size bytes of body}...: the choice's low 3 bits pick the block type, its
// top 2 bits add to the body's size (4 * size byte), so that bodies need padding too. A valid
// Section Header Block comes first; each section is in the other byte order from the one before,
// and a section header's body gets its byte-order magic in front.
std::string build(std::string_view in) {
  std::string out;
  bool big = true;  // the first section header turns it: that section is little-endian, as its body
  const auto put32 = [&](uint32_t v) {
    if (big) v = __builtin_bswap32(v);
    out.append(reinterpret_cast<const char*>(&v), 4);
  };
  const auto block = [&](uint32_t type, std::string_view body) {
    const bool shb = type == vei::pcapng::block::section_header;
    if (shb) big = !big;  // every other section in the other byte order
    const size_t length = vei::pcapng::pad4(body.size() + (shb ? 4 : 0)) + 12;
    put32(type);
    put32(static_cast<uint32_t>(length));
    if (shb) put32(vei::pcapng::byte_order_magic);
    out.append(body);
    out.append(vei::pcapng::pad4(body.size()) - body.size(), '\0');
    put32(static_cast<uint32_t>(length));
  };
  // A valid first section: version 1.0, whatever follows.
  block(vei::pcapng::block::section_header, std::string_view("\1\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff", 12));
  while (in.size() >= 2) {
    const auto choice = static_cast<uint8_t>(in[0]);
    const size_t size = std::min<size_t>(static_cast<uint8_t>(in[1]) * 4u + (choice >> 6), in.size() - 2);
    const std::string_view body = in.substr(2, size);
    in.remove_prefix(2 + size);
    if ((choice & 7) == 7)
      out.append(body);
    else
      block(block_types[choice & 7], body);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vei::fuzz::captures(build({reinterpret_cast<const char*>(data), size}));
  return 0;
}
