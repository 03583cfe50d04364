// pcapng, read by veipipe itself as core/pcap_reader.h reads classic pcap: large read()s into the
// batch's arena, blocks parsed in place, each packet moved down over its block's framing behind a
// 16-byte pcap record header, so that a batch's records lie back to back in the output format.
//
// Unlike libpcap, which stops at the first interface whose link type or snaplen differs from the
// first one's, every interface of every section is read: each record names its interface
// (Record::iface, an index in SourceInfo::interfaces). That list is complete when open_pcapng
// returns: a regular file is scanned to its end first (block headers through large reads); a
// stream lists the interfaces described before its first packet, and a later one must equal one
// of them.
#pragma once

#include <memory>
#include <vector>

#include "core/timeline_source.h"

namespace vei {

// Takes ownership of `fd`, from which the `prefix` bytes were already read (they start with a
// Section Header Block's type). Throws std::runtime_error naming the file when no interface can
// be read from it, or when `options.filter` is set on a capture of several link types.
std::unique_ptr<TimelineSource> open_pcapng(int fd, std::vector<std::byte> prefix, SourceOptions options);

}  // namespace vei
