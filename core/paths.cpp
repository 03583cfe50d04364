#include "core/paths.h"

#include <sys/stat.h>

#include <filesystem>
#include <optional>

namespace vei {
namespace {

namespace fs = std::filesystem;

// What a path names now: the file itself when it exists, else where writing would create it.
struct Identity {
  bool exists = false;
  bool shared = false;  // a character device: writing it destroys nothing another use reads
  dev_t device = 0;
  ino_t inode = 0;
  fs::path where;  // when !exists
};

bool is_path(std::string_view path) { return !path.empty() && path != "-"; }

Identity identify(std::string_view text) {
  const std::string path(text);
  Identity id;
  // stat follows symlinks, and /dev/stdout and /proc/self/fd/N are symlinks the kernel resolves to
  // the open file itself: no special case for them.
  if (struct stat st {}; ::stat(path.c_str(), &st) == 0) {
    id.exists = true;
    id.shared = S_ISCHR(st.st_mode);
    id.device = st.st_dev;
    id.inode = st.st_ino;
    return id;
  }
  // Missing (or unreachable: then opening it fails anyway, and comparing paths is the best guess).
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
  if (a.exists) return a.device == b.device && a.inode == b.inode && !a.shared;
  return a.where == b.where;
}

}  // namespace

bool same_file(std::string_view a, std::string_view b) {
  return is_path(a) && is_path(b) && same(identify(a), identify(b));
}

std::vector<PathClash> find_path_clashes(const std::vector<PathUse>& uses) {
  // Each path is looked at once: a run names a handful, so comparing every pair is cheap.
  std::vector<std::optional<Identity>> ids;
  ids.reserve(uses.size());
  for (const auto& use : uses) ids.push_back(is_path(use.path) ? std::optional(identify(use.path)) : std::nullopt);
  const auto match = [&](size_t i, size_t j) { return i != j && ids[i] && ids[j] && same(*ids[i], *ids[j]); };

  std::vector<PathClash> clashes;
  for (size_t w = 0; w < uses.size(); ++w) {
    if (!uses[w].writes) continue;
    std::optional<size_t> other;
    for (size_t r = 0; r < uses.size() && !other; ++r)
      if (!uses[r].writes && match(w, r)) other = r;
    for (size_t e = 0; e < w && !other; ++e)
      if (uses[e].writes && match(w, e)) other = e;
    if (other) clashes.push_back({w, *other});
  }
  return clashes;
}

}  // namespace vei
