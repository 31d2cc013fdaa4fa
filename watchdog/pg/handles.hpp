#pragma once

/// RAII owners for libpq's C handles: every handle gets its deleter where it is created.

#include <libpq-fe.h>

#include <memory>

namespace pgwd {

struct PgConnDeleter {
  /// False for a connection the host owns and lent us (pgwd/lending.hpp): never ours to finish.
  bool finish = true;
  void operator()(PGconn* conn) const noexcept {
    if (finish) PQfinish(conn);
  }
};
using PgConnPtr = std::unique_ptr<PGconn, PgConnDeleter>;

struct PgResultDeleter {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using PgResultPtr = std::unique_ptr<PGresult, PgResultDeleter>;

/// For what libpq allocates and PQfreemem frees: notifications, escaped strings, ...
struct PgFreememDeleter {
  void operator()(void* memory) const noexcept { PQfreemem(memory); }
};
using PgNotifyPtr = std::unique_ptr<PGnotify, PgFreememDeleter>;
using PgStringPtr = std::unique_ptr<char, PgFreememDeleter>;

struct ConninfoOptionsDeleter {
  void operator()(PQconninfoOption* options) const noexcept { PQconninfoFree(options); }
};
using ConninfoOptionsPtr = std::unique_ptr<PQconninfoOption, ConninfoOptionsDeleter>;

}  // namespace pgwd
