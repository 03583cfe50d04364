// pcapng, read by veipipe itself as core/pcap_reader.h reads classic pcap: large read()s into the
// batch's arena, blocks parsed in place, each packet moved down over its block's framing behind a
// 16-byte pcap record header, so that a batch's records lie back to back in the output format.
//
// Unlike libpcap, which stops at the first interface whose link type or snaplen differs from the
// first one's, every interface of every section is read: each record names its interface
// (Record::iface). SourceInfo::interfaces lists those described before the first packet, when
// open_pcapng returns; SourceOptions::interfaces also gets those described later, as they come. A
// later section describing an interface again names the one met before.
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
