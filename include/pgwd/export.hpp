#pragma once

/// \file
/// PGWD_EXPORT marks what a shared libpgwatchdog exports. The library is compiled with
/// -fvisibility=hidden -fvisibility-inlines-hidden, so everything else (the state machine,
/// libpq and libevent glue, inline code from spdlog, fmt and prometheus-cpp) stays internal and
/// can change without breaking the ABI. Put it on public classes (which exports their vtable and
/// typeinfo: needed to subclass Observer and to catch InvalidTarget across the library boundary),
/// free functions and variables of include/pgwd/, never on internals. Harmless in a static build.

#if defined(__GNUC__) || defined(__clang__)
#define PGWD_EXPORT __attribute__((visibility("default")))
#else
#define PGWD_EXPORT
#endif
