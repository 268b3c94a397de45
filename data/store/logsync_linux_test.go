//go:build linux

package store

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"
)

// BenchmarkLogSync compares the two ways of making an appended log durable, with the bytes
// of one group commit of `nudge bench ingest` (about 700 events of 175 bytes) per op:
// Badger's memtable log (a file mmaped and written in place, then msync: what DB.Sync does)
// and the redo log (write(2), then fdatasync). It reports process CPU per op next to wall
// time: on the 2-core VM msync costs about four times the CPU, as each synced page is
// write-protected again.
//
//	go test ./data/store -run XXX -bench LogSync -benchtime 400x
func BenchmarkLogSync(b *testing.B) {
	const per = 700 * 175
	rec := make([]byte, per)
	for i := range rec {
		rec[i] = byte(i)
	}
	b.Run("mmap+msync", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "log.mem"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		size := (b.N + 1) * per
		if err := f.Truncate(int64(size)); err != nil {
			b.Fatal(err)
		}
		data, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
		if err != nil {
			b.Fatal(err)
		}
		defer syscall.Munmap(data)
		cpu0 := processCPU()
		b.ResetTimer()
		for i := range b.N {
			copy(data[i*per:], rec)
			const msSync = 4 // MS_SYNC
			if _, _, e := syscall.Syscall(syscall.SYS_MSYNC, uintptr(unsafe.Pointer(&data[0])), uintptr(size), msSync); e != 0 {
				b.Fatal(e)
			}
		}
		b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e3, "cpu-µs/op")
	})
	b.Run("write+fdatasync", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "redo.log"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		cpu0 := processCPU()
		b.ResetTimer()
		for range b.N {
			if _, err := f.Write(rec); err != nil {
				b.Fatal(err)
			}
			if err := fdatasync(f); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e3, "cpu-µs/op")
	})
}
