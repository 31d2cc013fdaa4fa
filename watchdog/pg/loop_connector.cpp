#include "pg/loop_connector.hpp"

#include "pg/connect_poller.hpp"

namespace pgwd {
namespace {

class LoopAttempt final : public ConnectAttempt {
 public:
  LoopAttempt(GuardedLoop& loop, const ConnectionRef& who, Connector::Done done)
      : poller_(loop, &loop, who, std::move(done)) {}
  std::optional<AttemptOutcome> start(const Conninfo& conninfo) { return poller_.start(conninfo); }
  bool finish_if_ready() override { return poller_.finish_if_ready(); }

 private:
  ConnectPoller poller_;
};

}  // namespace

Connector::Started LoopConnector::start(const Conninfo& conninfo, const ConnectionRef& who,
                                        Done done) {
  auto attempt = std::make_unique<LoopAttempt>(loop_, who, std::move(done));
  if (auto refused = attempt->start(conninfo)) return {nullptr, std::move(refused)};
  return {std::move(attempt), std::nullopt};
}

}  // namespace pgwd
