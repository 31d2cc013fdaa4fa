#include "support/loop_gaps.hpp"

#include <algorithm>
#include <fstream>
#include <string>

namespace pgwd::testing {

namespace {

long long ms(std::chrono::nanoseconds d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace

void LoopGaps::restart() {
  last_ = Clock::now();
  last_stat_ = thread_schedstat();
  worst_gap_ = worst_own_ = Clock::duration::zero();
  worst_on_cpu_ = std::chrono::nanoseconds::zero();
  worst_gap_end_ = {};
  worst_gap_split_ = {};
  ticks_ = 0;
}

void LoopGaps::tick() {
  const auto now = Clock::now();
  const std::optional<SchedStat> stat = thread_schedstat();
  const Clock::duration gap = now - last_;
  SchedStat split{};
  if (stat && last_stat_)
    split = {stat->on_cpu - last_stat_->on_cpu, stat->waiting - last_stat_->waiting};
  if (gap > worst_gap_) {
    worst_gap_ = gap;
    worst_gap_end_ = now;
    worst_gap_split_ = split;
  }
  worst_own_ =
      std::max(worst_own_, gap - std::chrono::duration_cast<Clock::duration>(split.waiting));
  worst_on_cpu_ = std::max(worst_on_cpu_, split.on_cpu);
  last_ = now;
  last_stat_ = stat;
  ++ticks_;
}

std::string LoopGaps::summary() const {
  std::string out =
      std::to_string(ticks_) + " ticks, worst gap " + std::to_string(ms(worst_gap_)) + " ms";
  if (last_stat_)
    out += " (" + std::to_string(ms(worst_gap_split_.on_cpu)) + " ms on a CPU, " +
           std::to_string(ms(worst_gap_split_.waiting)) +
           " ms waiting for one), worst gap less its wait for a CPU " +
           std::to_string(ms(worst_own_)) + " ms, most CPU within one gap " +
           std::to_string(ms(worst_on_cpu_)) + " ms";
  else
    out += " (no run-queue statistics on this kernel)";
  return out;
}

LoopTicker::LoopTicker(event_base* base, std::chrono::milliseconds every)
    : event_(event_new(
          base, -1, EV_PERSIST,
          [](evutil_socket_t, short, void* self) { static_cast<LoopGaps*>(self)->tick(); },
          &gaps_)) {
  const timeval period = to_timeval(every);
  event_add(event_.get(), &period);
  gaps_.restart();
}

}  // namespace pgwd::testing
