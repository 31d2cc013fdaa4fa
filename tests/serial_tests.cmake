# Read by ctest after the discovered tests are defined (TEST_INCLUDE_FILES in CMakeLists.txt).
# The two 1000-connection storm tests each restart 1000 backends on the machine's 2 cores: beside
# each other, or beside anything else, they would load their neighbours with 1000 exiting and
# starting processes, and need 2000 client sockets and backends of their own. Each runs alone.
set_tests_properties(
  "integration:storm: 1000 connections through pg_ctl restart -m fast - all back with jittered attempts and a responsive loop"
  "integration:storm: 1000 connections with scram-sha-256 through pg_ctl restart -m fast"
  PROPERTIES RUN_SERIAL TRUE
  # Beside a CPU hog and two builds, connecting 1000 took 36 s and the storm as long again: the
  # test's own deadlines (150 s each) only catch a connection that never comes back.
  TIMEOUT 400)
