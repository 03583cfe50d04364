// core/paths: which written paths are the same file as another path of the run (issue 10, item 10).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/paths.h"
#include "testutil.h"

using namespace vei;
namespace fs = std::filesystem;

namespace {

void touch(const fs::path& path, const std::string& content = "data") { std::ofstream(path) << content; }

PathUse read(const fs::path& p, size_t tag = 0) { return {p.string(), false, tag}; }
PathUse write(const fs::path& p, size_t tag = 0) { return {p.string(), true, tag}; }

// The clashes as (written, other) pairs, for short comparisons.
std::vector<std::pair<size_t, size_t>> clashes(const std::vector<PathUse>& uses) {
  std::vector<std::pair<size_t, size_t>> out;
  for (const auto& c : find_path_clashes(uses)) out.emplace_back(c.at, c.other);
  return out;
}
using Pairs = std::vector<std::pair<size_t, size_t>>;

// Runs the test body in `dir` so that relative paths are spelled as a user would; restores the
// working directory after.
// Points descriptor `fd` (0 or 1) at `path` until destroyed, as a shell's `<` or `>>` would.
// Nothing may print to standard output meanwhile: doctest's checks come after it is restored.
class Redirect {
 public:
  Redirect(int fd, const fs::path& path) : fd_(fd), saved_(::dup(fd)) {
    const int opened = ::open(path.c_str(), fd == STDIN_FILENO ? O_RDONLY : O_WRONLY | O_APPEND | O_CREAT, 0644);
    REQUIRE(opened >= 0);
    ::dup2(opened, fd);
    ::close(opened);
  }
  ~Redirect() {
    std::fflush(stdout);
    ::dup2(saved_, fd_);
    ::close(saved_);
  }
  Redirect(const Redirect&) = delete;
  Redirect& operator=(const Redirect&) = delete;

 private:
  int fd_, saved_;
};

class InDirectory {
 public:
  explicit InDirectory(const fs::path& dir) : saved_(fs::current_path()) { fs::current_path(dir); }
  ~InDirectory() { fs::current_path(saved_); }
  InDirectory(const InDirectory&) = delete;
  InDirectory& operator=(const InDirectory&) = delete;

 private:
  fs::path saved_;
};

}  // namespace

TEST_CASE("paths: an existing input written, spelled the same or otherwise, is a clash") {
  test::TempDir dir;
  touch(dir / "bg.pcap");
  fs::create_directory(dir / "sub");
  InDirectory in(dir.path());
  CHECK(clashes({read("bg.pcap"), write("o.pcap"), write("bg.pcap")}) == Pairs{{2, 0}});
  CHECK(clashes({read("bg.pcap"), write("./sub/../bg.pcap")}) == Pairs{{1, 0}});
  CHECK(clashes({read("bg.pcap"), write(dir / "bg.pcap")}) == Pairs{{1, 0}});
  // The write is reported wherever it is listed, the input is left as it is.
  CHECK(clashes({write("bg.pcap"), read("bg.pcap")}) == Pairs{{0, 1}});
}

TEST_CASE("paths: a hard link or a symlink to an input is the same file") {
  test::TempDir dir;
  touch(dir / "bg.pcap");
  fs::create_hard_link(dir / "bg.pcap", dir / "hard.pcap");
  fs::create_symlink("bg.pcap", dir / "soft.pcap");  // relative to its own directory
  CHECK(clashes({read(dir / "bg.pcap"), write(dir / "hard.pcap")}) == Pairs{{1, 0}});
  CHECK(clashes({read(dir / "bg.pcap"), write(dir / "soft.pcap")}) == Pairs{{1, 0}});
  CHECK(clashes({read(dir / "soft.pcap"), write(dir / "hard.pcap")}) == Pairs{{1, 0}});
}

TEST_CASE("paths: a symlinked directory is resolved before `..`, as the kernel does") {
  test::TempDir dir;
  fs::create_directories(dir / "deep" / "sub");
  fs::create_directory_symlink(dir / "deep" / "sub", dir / "via");
  // via/../o.pcap is deep/o.pcap for open(2), not the o.pcap beside via.
  CHECK(clashes({write(dir / "deep" / "o.pcap"), write(dir / "via" / ".." / "o.pcap")}) == Pairs{{1, 0}});
  CHECK(clashes({write(dir / "o.pcap"), write(dir / "via" / ".." / "o.pcap")}).empty());
}

TEST_CASE("paths: /proc/self/fd/N is the file it has open") {
  test::TempDir dir;
  touch(dir / "bg.pcap");
  const int fd = ::open((dir / "bg.pcap").c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  CHECK(clashes({read(dir / "bg.pcap"), write("/proc/self/fd/" + std::to_string(fd))}) == Pairs{{1, 0}});
  ::close(fd);
}

TEST_CASE("paths: a path not created yet, spelled two ways, is one file") {
  test::TempDir dir;
  fs::create_directory(dir / "dir");
  InDirectory in(dir.path());
  CHECK(clashes({write("o.pcap"), write("./dir/../o.pcap")}) == Pairs{{1, 0}});
  CHECK(clashes({write("o.pcap"), write(dir / "o.pcap")}) == Pairs{{1, 0}});
  CHECK(clashes({read("o.pcap"), write("o.pcap")}) == Pairs{{1, 0}});  // a missing input: still that path
  // A dangling symlink: writing through it creates its target.
  fs::create_symlink("dir/later.pcap", "link.pcap");
  CHECK(clashes({write("dir/later.pcap"), write("link.pcap")}) == Pairs{{1, 0}});
  CHECK_FALSE(fs::exists("o.pcap"));  // nothing is created by looking
  CHECK_FALSE(fs::exists("dir/later.pcap"));
}

TEST_CASE("paths: two writes of one file clash once, at the later one") {
  test::TempDir dir;
  touch(dir / "o.pcap");  // the output of an earlier run
  CHECK(clashes({write(dir / "o.pcap", 7), write(dir / "o.pcap", 8)}) == Pairs{{1, 0}});
  CHECK(clashes({write(dir / "x"), write(dir / "x"), write(dir / "x")}) == Pairs{{1, 0}, {2, 0}});
  // A read is the partner named when there is one, even after the other write.
  CHECK(clashes({write(dir / "o.pcap"), read(dir / "a.pcap"), write(dir / "o.pcap"), read(dir / "o.pcap")}) ==
        Pairs{{0, 3}, {2, 3}});
  // The caller's tags come through untouched.
  const std::vector<PathUse> uses{write(dir / "o.pcap", 7), write(dir / "o.pcap", 8)};
  const auto found = find_path_clashes(uses);
  REQUIRE(found.size() == 1);
  CHECK(uses[found[0].at].tag == 8);
  CHECK(uses[found[0].other].tag == 7);
}

TEST_CASE("paths: reads of one file, different files, empty paths and character devices are no clash") {
  test::TempDir dir;
  touch(dir / "a.pcap");
  touch(dir / "b.pcap");
  CHECK(clashes({read(dir / "a.pcap"), read(dir / "a.pcap"), read(dir / "a.pcap")}).empty());
  CHECK(clashes({read(dir / "a.pcap"), write(dir / "b.pcap"), write(dir / "o.pcap"), write(dir / "o.csv")}).empty());
  // One exists, the other does not: different files.
  CHECK(clashes({read(dir / "a.pcap"), write(dir / "a.pcap.new")}).empty());
  CHECK(clashes({write(""), read(""), write("")}).empty());
  // /dev/null takes any number of writers: nothing is destroyed.
  CHECK(clashes({write("/dev/null"), write("/dev/null")}).empty());
  CHECK(clashes({}).empty());
}

// Issue 11, item 2: `pcap(-) -> file(x.pcap) < x.pcap` emptied x.pcap, `-` being no path.
TEST_CASE("paths: `-` and /dev/stdin, /dev/stdout, /dev/fd/N are the files the descriptors were given") {
  test::TempDir dir;
  touch(dir / "x.pcap");
  touch(dir / "y.pcap");
  Pairs from_stdin, from_devstdin, from_fd, to_stdout, to_devstdout, both, stdin_and_path;
  {
    Redirect in(STDIN_FILENO, dir / "x.pcap");
    Redirect out(STDOUT_FILENO, dir / "y.pcap");
    from_stdin = clashes({read("-"), write(dir / "x.pcap")});
    from_devstdin = clashes({read("/dev/stdin"), write(dir / "x.pcap")});
    from_fd = clashes({write("/dev/fd/0"), read(dir / "x.pcap")});
    to_stdout = clashes({read(dir / "y.pcap"), write("-")});
    to_devstdout = clashes({read(dir / "y.pcap"), write("/dev/stdout")});
    both = clashes({read("-"), write("-"), write(dir / "y.pcap")});
    // A regular file read as `-` and by its name: two open files, two offsets, both read it whole.
    stdin_and_path = clashes({read("-"), read(dir / "x.pcap")});
  }
  CHECK(from_stdin == Pairs{{1, 0}});
  CHECK(from_devstdin == Pairs{{1, 0}});
  CHECK(from_fd == Pairs{{0, 1}});
  CHECK(to_stdout == Pairs{{1, 0}});
  CHECK(to_devstdout == Pairs{{1, 0}});
  CHECK(both == Pairs{{2, 1}});  // `-` in and out are two files; y.pcap is written twice
  CHECK(stdin_and_path.empty());
}

TEST_CASE("paths: standard input, a pipe or a terminal read twice is a clash; written twice to /dev/null is not") {
  test::TempDir dir;
  touch(dir / "x.pcap");
  std::vector<PathClash> twice, pipe_twice, null_twice;
  {
    Redirect in(STDIN_FILENO, dir / "x.pcap");
    // Even a regular file: `-` is one descriptor, one offset, and each reader gets what the other left.
    twice = find_path_clashes({read("-"), read(dir / "y.pcap"), read("-")});
  }
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const std::string pipe_in = "/proc/self/fd/" + std::to_string(fds[0]);
  pipe_twice = find_path_clashes({read(pipe_in), read("/dev/fd/" + std::to_string(fds[0]))});
  ::close(fds[0]);
  ::close(fds[1]);
  {
    Redirect in(STDIN_FILENO, "/dev/null");
    Redirect out(STDOUT_FILENO, "/dev/null");
    null_twice = find_path_clashes({read("-"), write("-"), write("/dev/null"), write("-")});
  }
  REQUIRE(twice.size() == 1);
  CHECK(twice[0].at == 2);
  CHECK(twice[0].other == 0);
  CHECK(twice[0].read_twice);
  REQUIRE(pipe_twice.size() == 1);
  CHECK(pipe_twice[0].read_twice);
  CHECK(null_twice.empty());
  CHECK(describe(read("-")) == "'-' (standard input)");
  CHECK(describe(write("-")) == "'-' (standard output)");
  CHECK(describe(write("o.pcap")) == "'o.pcap'");
}
