// main() of every property binary: pins rapidcheck's seed so that CI runs
// are deterministic, unless the user sets RC_PARAMS (e.g. "seed=N" or the
// "reproduce=..." string a failing property prints), which then wins.
#include <gtest/gtest.h>

#include <cstdlib>

int main(int argc, char **argv) {
  setenv("RC_PARAMS", "seed=20261124", /*overwrite=*/0);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
