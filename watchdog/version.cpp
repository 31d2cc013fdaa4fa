#include "pgwd/version.hpp"

#ifndef PGWD_VERSION
#error "PGWD_VERSION must be defined by the build"
#endif

namespace pgwd {

const std::string_view kVersion = PGWD_VERSION;

}  // namespace pgwd
