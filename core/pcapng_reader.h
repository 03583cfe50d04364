// pcapng (and any other format libpcap reads) through libpcap's pcap_next_ex: not the fast path,
// but the one that knows every block type.
#pragma once

#include <memory>
#include <vector>

#include "core/timeline_source.h"

namespace vei {

// Takes ownership of `fd`, from which the `prefix` bytes were already read.
std::unique_ptr<TimelineSource> open_pcapng(int fd, std::vector<std::byte> prefix, SourceOptions options);

}  // namespace vei
