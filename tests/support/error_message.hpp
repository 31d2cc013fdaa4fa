#pragma once

// What the tests of bad input compare: the message a call's error carries.

#include <string>

namespace pgwd::testing {

/// The message of the `Error` that `call()` throws, or "(no error)" when it returns: a test that
/// expects an error then fails showing that none came, rather than with an exception of its own.
template <class Error, class Call>
std::string message_of(Call&& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace pgwd::testing
