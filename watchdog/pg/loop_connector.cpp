#include "pg/loop_connector.hpp"

#include "pg/connect_poller.hpp"

namespace pgwd {
namespace {

class LoopAttempt final : public ConnectAttempt {
 public:
  LoopAttempt(Loop& loop, ActivityNotes& notes, const ConnectionRef& who, Connector::Done done)
      : poller_(loop, &notes, who, std::move(done)) {}
  void start(const Conninfo& conninfo) { poller_.start(conninfo); }

 private:
  ConnectPoller poller_;
};

}  // namespace

std::unique_ptr<ConnectAttempt> LoopConnector::start(const Conninfo& conninfo,
                                                     const ConnectionRef& who, Done done) {
  auto attempt = std::make_unique<LoopAttempt>(loop_, notes_, who, std::move(done));
  attempt->start(conninfo);
  return attempt;
}

}  // namespace pgwd
