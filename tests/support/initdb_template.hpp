#pragma once

/// initdb once per test run. Every TestCluster used to run initdb (1 s of a quiet core, 2-3 s on a
/// loaded one), and a suite run makes hundreds of clusters: minutes of the suite's time on two
/// cores went to producing the same data directory again. Under $PGWD_TEST_ROOT (scripts/test
/// makes one per run and removes it), the first cluster runs initdb into a template there, and
/// every cluster copies it (`cp -a`, under 0.1 s).
///
/// The copies share initdb's system identifier (pg_control), as a primary and its standby do: a
/// test must not tell two of its clusters apart by `system_identifier`.

#include <functional>
#include <optional>
#include <string>

namespace pgwd::testing {

/// Runs initdb into the data directory it is given (which does not exist yet).
using InitdbRunner = std::function<void(const std::string& data_dir)>;

/// The template data directory under $PGWD_TEST_ROOT, made by `run_initdb` the first time any
/// process of this test run asks (under a file lock, so parallel tests wait for one initdb rather
/// than racing). nullopt without $PGWD_TEST_ROOT: the caller runs initdb itself, so that nothing is
/// left behind in /tmp. Throws when making the template fails.
std::optional<std::string> initdb_template(const InitdbRunner& run_initdb);

/// Copies the template to `data_dir` (which must not exist), as the server's OS user when
/// `as_postgres`, keeping modes. Throws with cp's output on failure.
void copy_initdb_template(const std::string& template_dir, const std::string& data_dir,
                          bool as_postgres);

}  // namespace pgwd::testing
