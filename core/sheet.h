// What the merger hands the output: the merged records as ranges of the batches that hold them, so
// that a sink writes them from where the reader put them (one writev for many ranges) instead of
// from a copy. A batch goes back to its pool once the sheet holding its last range is written.
//
// Ownership: the merger fills a sheet and hands it on whole; from then on the output thread owns it,
// reads its pieces, releases `done` after writing them, and deletes it. The batches a sheet's
// pieces point into stay unchanged until then: the merger never touches a batch again once it is
// in a sheet's `done` list, and no batch is in `done` before its last piece is.
#pragma once

#include <cstdint>
#include <vector>

#include "core/batch.h"

namespace vei {

// Records [first, first + count) of `batch`: they lie back to back in its arena, headers in the
// output's format.
struct Piece {
  const Batch* batch;
  uint32_t first;
  uint32_t count;
};

struct Sheet {
  std::vector<Piece> pieces;  // in output order
  std::vector<Batch*> done;   // back to their pools once every piece above is written
  bool last = false;          // nothing follows: the output ends after this sheet

  // Appends records [first, first + count) of `batch`, as part of the last piece when they follow it.
  void add(const Batch& batch, size_t first, size_t count) {
    if (count == 0) return;
    if (!pieces.empty() && pieces.back().batch == &batch && pieces.back().first + pieces.back().count == first) {
      pieces.back().count += static_cast<uint32_t>(count);
      return;
    }
    pieces.push_back({&batch, static_cast<uint32_t>(first), static_cast<uint32_t>(count)});
  }
  // Gives the batches in `done` back to their pools: the pieces are written (or never will be).
  void release() {
    for (Batch* b : done) b->pool->release(b);
    done.clear();
  }
};

}  // namespace vei
