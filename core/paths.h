// Paths a run would destroy (issue 10, item 10). A run truncates or creates every path it writes
// (the output, its labels, --stats-json) and binds its control sockets, so each written path must
// be a file that nothing else in the same run reads or writes: `file(o.pcap, labels=bg.pcap)`
// would empty the input bg.pcap before it is read, `labels=o.pcap` would write over the capture.
//
// The caller lists every path it reads and writes, checks them all before it opens anything for
// writing, and turns each clash into an error (with a caret under uses[at] when it has one).
// This is a check of the description, not a lock: a file created or renamed between the check and
// the open is not seen.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace vei {

// One path a run names, as the user wrote it (relative to the working directory). `-` is the
// file behind standard input for a read and standard output for a write (issue 11, item 2:
// `pcap(-) -> file(x.pcap) < x.pcap` would empty x.pcap). The empty string is no path.
struct PathUse {
  std::string path;
  bool writes = false;  // created, truncated or bound by the run; false: only read
  size_t tag = 0;       // the caller's own handle (e.g. which Span to show); not used here
};

// uses[at] can destroy or starve what uses[other] names.
//  - a write (`read_twice` false): uses[other] is a read when there is one (destroying an input
//    says more than writing twice), else an earlier write, so that two writes of the same file
//    are reported once, at the later one;
//  - a second read of a stream (`read_twice`): standard input, a pipe, a FIFO, a socket or a
//    terminal hands each byte to one reader only, so two sources reading it would each get part.
struct PathClash {
  size_t at = 0;
  size_t other = 0;
  bool read_twice = false;
};

// The clashes among `uses`, at most one per use, in the order of `uses`. Two reads of the same
// regular file are no clash. Same file:
//  - both exist: the same device and inode, following symlinks, so that a hard link, a symlink,
//    `./dir/../bg.pcap`, `-`, /dev/stdin, /dev/stdout, /dev/fd/N or /proc/self/fd/N redirected to
//    a file all match the file; writing a character device (/dev/null, a terminal) destroys
//    nothing, so it takes any number of writers;
//  - neither exists: the same absolute path once the part that exists is resolved
//    (weakly_canonical), so `o.pcap` and `./dir/../o.pcap` match before o.pcap is created; a
//    dangling symlink is followed to the file that writing through it would create;
//  - one exists and the other not: different files.
std::vector<PathClash> find_path_clashes(const std::vector<PathUse>& uses);

// Throws std::runtime_error "PATH: reason" when PATH could not be created or written (a missing
// or unwritable directory, a directory in its place, a read-only file system), found without
// creating or changing anything.
void check_writable(const std::string& path);

// How a use is named in a message: the path, and for `-` which descriptor it stands for.
std::string describe(const PathUse& use);

}  // namespace vei
