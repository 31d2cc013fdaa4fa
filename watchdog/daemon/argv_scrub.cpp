#include "daemon/argv_scrub.hpp"

#include <cstring>
#include <string_view>

#include "pg/secrets.hpp"

namespace pgwd::daemon {

void hide_passwords_in_arguments(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view argument(argv[i]);
    for (const std::string& secret : passwords_in(argument)) {
      for (char* at = std::strstr(argv[i], secret.c_str()); at;
           at = std::strstr(at + secret.size(), secret.c_str()))
        std::memset(at, '*', secret.size());
    }
  }
}

}  // namespace pgwd::daemon
