#pragma once

/// \file
/// The library's log for a benchmark: stderr (stdout carries the figures), errors only, so a
/// thousand reconnect lines do not cost the measured loop a write each.

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <memory>

namespace pgwd::bench {

inline std::shared_ptr<spdlog::logger> quiet_logger() {
  static const std::shared_ptr<spdlog::logger> logger = [] {
    auto made = std::make_shared<spdlog::logger>("bench",
                                                 std::make_shared<spdlog::sinks::stderr_sink_mt>());
    made->set_level(spdlog::level::err);
    return made;
  }();
  return logger;
}

}  // namespace pgwd::bench
