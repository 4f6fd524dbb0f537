#include "prv_pure.h"
const char *prv_pure_version(void);
const char *prv_pure_version(void) { return "0.1.0"; }
