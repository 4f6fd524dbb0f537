/* Pure C helpers of provision.core: no Lua, testable on their own. */
#ifndef PROVISION_PURE_H
#define PROVISION_PURE_H
#include <stddef.h>
#endif
