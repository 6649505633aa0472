#pragma once
// The source revision this binary was built from, captured at build time (cmake/write_build_revision.cmake).

namespace gptbench {

// git's short (12-character) HEAD of the source tree at build time; "" when it was not a git checkout.
const char* build_git_revision();
// 1: the tree had uncommitted changes to tracked files at build time, 0: it had none, -1: unknown.
int build_git_dirty();

}  // namespace gptbench
