// Paths a run would destroy (issue 10, item 10). A run truncates or creates every path it writes
// (the output, its labels, --stats-json) and binds its control sockets, so each written path must
// be a file that nothing else in the same run reads or writes: `file(o.pcap, labels=bg.pcap)`
// would empty the input bg.pcap before it is read, `labels=o.pcap` would write over the capture.
//
// The caller lists every path it reads and writes, checks them all before it opens anything for
// writing, and turns each clash into an error (with a caret under uses[written] when it has one).
// This is a check of the description, not a lock: a file created or renamed between the check and
// the open is not seen.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace vei {

// One path a run names, as the user wrote it (relative to the working directory). `-` (stdin or
// stdout) and the empty string are not paths: they take part in no clash.
struct PathUse {
  std::string path;
  bool writes = false;  // created, truncated or bound by the run; false: only read
  size_t tag = 0;       // the caller's own handle (e.g. which Span to show); not used here
};

// uses[written] (a write) names the same file as uses[other]: a read when there is one (destroying
// an input says more than writing twice), else an earlier write, so that two writes of the same
// file are reported once, at the later one.
struct PathClash {
  size_t written = 0;
  size_t other = 0;
};

// The clashes among `uses`, at most one per written path, in the order of `uses`. Two reads of the
// same file are no clash. Same file (see same_file):
//  - both exist: the same device and inode, following symlinks, so that a hard link, a symlink,
//    `./dir/../bg.pcap`, /dev/stdout or /proc/self/fd/N redirected to a file all match the file;
//    a character device (/dev/null, a terminal) takes any number of readers and writers;
//  - neither exists: the same absolute path once the part that exists is resolved
//    (weakly_canonical), so `o.pcap` and `./dir/../o.pcap` match before o.pcap is created; a
//    dangling symlink is followed to the file that writing through it would create;
//  - one exists and the other not: different files.
std::vector<PathClash> find_path_clashes(const std::vector<PathUse>& uses);

// Whether writing one of a and b could change what the other names, as defined above.
bool same_file(std::string_view a, std::string_view b);

}  // namespace vei
