/*
 * tests/modules/no_symbol.c - a shared object that is not a merpati
 * module: it exports a function but no `merpati_module`. The loader
 * must refuse it, naming the missing symbol.
 */
__attribute__((visibility("default"))) int not_a_module(void);

int
not_a_module(void)
{
	return 42;
}
