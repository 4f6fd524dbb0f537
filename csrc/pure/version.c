/* The one place the version lives in C: provision.core.version is this
 * string; lua/provision/init.lua's _VERSION and the rockspecs must agree
 * (tests/spec/rockspec_spec.lua checks them all). */
#include "prv_pure.h"
const char *prv_pure_version(void) { return "0.2.0"; }
