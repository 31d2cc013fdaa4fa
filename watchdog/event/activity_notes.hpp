#pragma once

#include <string_view>

#include "pgwd/events.hpp"
#include "pgwd/loop.hpp"

namespace pgwd {

/// What the watchdog's code was doing in a callback, for the slow-callback report and the
/// `phase` label of pgwatchdog_slow_callbacks_total.
enum class CallbackPhase {
  timer,         ///< a deadline, a backoff delay, the heartbeat, admission to a connect slot
  socket,        ///< readiness of a socket not yet attributed to anything finer
  dns,           ///< a name resolution finished
  post,          ///< work posted from another thread (WatchdogThread, take-back)
  connect_poll,  ///< PQconnectPoll: TCP, TLS handshake, authentication (SCRAM's CPU is here)
  setup,         ///< the LISTEN statements after a connect
  inspect,       ///< reading what arrived on an idle connection
  probe,         ///< the probe's answer
};
inline constexpr CallbackPhase kCallbackPhases[] = {
    CallbackPhase::timer,   CallbackPhase::socket,       CallbackPhase::dns,
    CallbackPhase::post,    CallbackPhase::connect_poll, CallbackPhase::setup,
    CallbackPhase::inspect, CallbackPhase::probe};
std::string_view to_string(CallbackPhase phase) noexcept;

/// One callback that ran longer than the threshold.
struct SlowCallback {
  Nanos took{0};
  CallbackPhase phase = CallbackPhase::timer;
  const ConnectionRef* connection = nullptr;  ///< what it was working for, if known
  const char* detail = nullptr;               ///< e.g. libpq's connection status; may be null
};

/// Where code running inside one of the watchdog's callbacks says what it is doing. The last
/// note before a slow callback returns is what the report names. Cheap: it stores pointers.
class ActivityNotes {
 public:
  /// `connection` and `detail` must stay valid until the current callback returns.
  virtual void doing(CallbackPhase phase, const ConnectionRef* connection,
                     const char* detail = nullptr) noexcept = 0;

 protected:
  ~ActivityNotes() = default;
};

}  // namespace pgwd
