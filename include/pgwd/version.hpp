#pragma once

#include <string_view>

#include "pgwd/export.hpp"

namespace pgwd {

/// pgwatchdog's version, as in `pgwatchdog --version` and `pgwatchdog_build_info{version}`.
PGWD_EXPORT extern const std::string_view kVersion;

}  // namespace pgwd
