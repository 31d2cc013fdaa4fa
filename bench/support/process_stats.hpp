#pragma once

/// \file
/// What the kernel says this process costs: resident memory, CPU time, a thread's context
/// switches (each voluntary switch of an idle loop thread is one wake-up from epoll_wait), and
/// the open-files limit the bigger sizes need.

#include <sys/types.h>

#include <cstdint>

namespace pgwd::bench {

/// Resident set size of this process, bytes (/proc/self/statm).
std::int64_t rss_bytes();
/// User + system CPU time of this whole process so far, nanoseconds (getrusage).
std::int64_t process_cpu_ns();
/// voluntary_ctxt_switches + nonvoluntary_ctxt_switches of one of our threads
/// (/proc/self/task/TID/status); -1 if unreadable.
std::int64_t thread_context_switches(pid_t tid);
/// Raises the soft RLIMIT_NOFILE towards `wanted` (up to the hard limit); returns the soft limit
/// now in force.
std::int64_t raise_open_files(std::int64_t wanted);

}  // namespace pgwd::bench
