/* The kinds and strategies of this build, for the configuration loader:
 * config/ sits below detect/ and recover/, so the root hands them over. */
#include "daemon/daemon.h"

#include "detect/detector.h"
#include "recover/strategy.h"

const struct cfg_registry daemon_registry = {
    .check_kind = detector_cfg_kind,
    .strategy_kind = strategy_cfg_kind,
};
