//go:build goinetd_debug

package main

const debugBuild = true
