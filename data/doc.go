// Package data is the root of nudge's storage layer: the Badger store (data/store), site
// configuration (data/config), imports and exports, dataset loaders and the synthetic traffic
// generator. Subpackages of data/ are the only code that imports Badger.
//
// data/ imports features/ (and model/ where it stores artifacts) but never training/, serve/
// or echo.
package data
