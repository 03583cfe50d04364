#include "core/paths.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <stdexcept>

namespace vei {
namespace {

namespace fs = std::filesystem;

// What a path names now: the file itself when it exists, else where writing would create it.
struct Identity {
  bool exists = false;
  bool regular = false;  // a regular file (or a block device): every reader gets every byte
  bool shared = false;   // a character device: writing it destroys nothing another use reads
  dev_t device = 0;
  ino_t inode = 0;
  fs::path where;  // when !exists
};

bool is_path(std::string_view path) { return !path.empty(); }
bool is_std(const PathUse& use) { return use.path == "-"; }

Identity existing(const struct stat& st) {
  Identity id;
  id.exists = true;
  id.regular = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
  id.shared = S_ISCHR(st.st_mode);
  id.device = st.st_dev;
  id.inode = st.st_ino;
  return id;
}

Identity identify(const PathUse& use) {
  // `-` is the descriptor itself: what the shell redirected it to (a closed one names nothing the
  // run could destroy, and opening it fails anyway).
  if (is_std(use)) {
    struct stat st {};
    if (::fstat(use.writes ? STDOUT_FILENO : STDIN_FILENO, &st) == 0) return existing(st);
    Identity none;
    none.where = use.writes ? "<closed stdout>" : "<closed stdin>";
    return none;
  }
  const std::string& path = use.path;
  // stat follows symlinks, and /dev/stdout, /dev/fd/N and /proc/self/fd/N are symlinks the kernel
  // resolves to the open file itself: no special case for them.
  if (struct stat st {}; ::stat(path.c_str(), &st) == 0) return existing(st);
  // Missing (or unreachable: then opening it fails anyway, and comparing paths is the best guess).
  Identity id;
  std::error_code ec;
  fs::path p = fs::absolute(path, ec);
  if (ec) p = path;
  // Opening a dangling symlink for writing creates its target: compare the target. Bounded like
  // the kernel's own resolution (40 links), so that a loop ends.
  for (int hops = 0; hops < 40; ++hops) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) break;
    const fs::path target = fs::read_symlink(p, ec);
    if (ec) break;
    p = target.is_absolute() ? target : p.parent_path() / target;
  }
  // weakly_canonical resolves the existing directories (symlinks, `..` after a symlink) and
  // normalises the rest lexically: `o.pcap` and `./dir/../o.pcap` give the same path.
  fs::path resolved = fs::weakly_canonical(p, ec);
  id.where = (ec ? p : resolved).lexically_normal();
  return id;
}

bool same(const Identity& a, const Identity& b) {
  if (a.exists != b.exists) return false;
  if (a.exists) return a.device == b.device && a.inode == b.inode;
  return a.where == b.where;
}

}  // namespace

void check_writable(const std::string& path) {
  const auto refuse = [&](std::string_view why) { throw std::runtime_error(fmt::format("{}: {}", path, why)); };
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) refuse(std::strerror(EISDIR));
    if (::access(path.c_str(), W_OK) != 0) refuse(std::strerror(errno));
    return;
  }
  if (errno != ENOENT) refuse(std::strerror(errno));  // a file where a directory should be, a loop...
  // Created by the run: its directory must take a new entry. The reasons are open(2)'s own, so
  // that `check` and a run say the same. (For a dangling symlink this is the link's directory.)
  const fs::path parent = fs::path(path).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  if (::stat(dir.c_str(), &st) != 0) refuse(std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) refuse(std::strerror(ENOTDIR));
  if (::access(dir.c_str(), W_OK | X_OK) != 0) refuse(std::strerror(errno));
}

std::string describe(const PathUse& use) {
  if (!is_std(use)) return fmt::format("'{}'", use.path);
  return use.writes ? "'-' (standard output)" : "'-' (standard input)";
}

std::vector<PathClash> find_path_clashes(const std::vector<PathUse>& uses) {
  // Each path is looked at once: a run names a handful, so comparing every pair is cheap.
  std::vector<std::optional<Identity>> ids;
  ids.reserve(uses.size());
  for (const auto& use : uses) ids.push_back(is_path(use.path) ? std::optional(identify(use)) : std::nullopt);
  const auto match = [&](size_t i, size_t j) { return i != j && ids[i] && ids[j] && same(*ids[i], *ids[j]); };

  std::vector<PathClash> clashes;
  for (size_t at = 0; at < uses.size(); ++at) {
    std::optional<size_t> other;
    if (uses[at].writes) {
      if (ids[at] && ids[at]->shared) continue;
      for (size_t r = 0; r < uses.size() && !other; ++r)
        if (!uses[r].writes && match(at, r)) other = r;
      for (size_t e = 0; e < at && !other; ++e)
        if (uses[e].writes && match(at, e)) other = e;
      if (other) clashes.push_back({at, *other, false});
      continue;
    }
    // Standard input shares one offset between its readers even when it is a regular file.
    for (size_t r = 0; r < at && !other; ++r)
      if (!uses[r].writes && match(at, r) && (!ids[at]->regular || (is_std(uses[at]) && is_std(uses[r])))) other = r;
    if (other) clashes.push_back({at, *other, true});
  }
  return clashes;
}

}  // namespace vei
