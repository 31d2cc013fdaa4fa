#pragma once

/// RAII owners for libpq's C handles: every handle gets its deleter where it is created.

#include <libpq-fe.h>

#include <memory>

namespace pgwd {

struct PgConnDeleter {
  void operator()(PGconn* conn) const noexcept { PQfinish(conn); }
};
using PgConnPtr = std::unique_ptr<PGconn, PgConnDeleter>;

struct PgResultDeleter {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using PgResultPtr = std::unique_ptr<PGresult, PgResultDeleter>;

struct PgNotifyDeleter {
  void operator()(PGnotify* notify) const noexcept { PQfreemem(notify); }
};
using PgNotifyPtr = std::unique_ptr<PGnotify, PgNotifyDeleter>;

struct ConninfoOptionsDeleter {
  void operator()(PQconninfoOption* options) const noexcept { PQconninfoFree(options); }
};
using ConninfoOptionsPtr = std::unique_ptr<PQconninfoOption, ConninfoOptionsDeleter>;

}  // namespace pgwd
