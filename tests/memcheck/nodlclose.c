int dlclose(void *h);
int dlclose(void *h) { (void)h; return 0; }
