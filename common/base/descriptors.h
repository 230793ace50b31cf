// File descriptors across fork/exec: what a child process may inherit.
//
// Every descriptor the project opens is close-on-exec (O_CLOEXEC / SOCK_CLOEXEC where the opener
// allows it, SetCloseOnExec() right after opening where a library opens it: LMDB's files, Asio's
// acceptor). Launchers also call CloseDescriptorsFrom(3) in the child between fork() and exec(), so
// a stage process starts with stdin, stdout and stderr only, whatever a library left open: a stage
// that outlives a crashed supervisor never holds its HTTP port, and LMDB's rule that an
// environment's descriptors must not cross a fork holds.
//
// All functions are async-signal-safe (only system calls), so they may run in a forked child.
#pragma once

namespace nd {

// Sets FD_CLOEXEC on `fd`. Returns false (errno set) on failure; a negative fd is a no-op (true).
bool SetCloseOnExec(int fd);

// Closes every descriptor >= `lowest` (close_range(2), or a loop over /proc/self/fd's range when
// the kernel lacks it). For a forked child just before exec.
void CloseDescriptorsFrom(int lowest);

}  // namespace nd
