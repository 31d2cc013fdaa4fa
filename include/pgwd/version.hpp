#pragma once

#include <string_view>

namespace pgwd {

/// pgwatchdog's version, as in `pgwatchdog --version` and `pgwatchdog_build_info{version}`.
extern const std::string_view kVersion;

}  // namespace pgwd
