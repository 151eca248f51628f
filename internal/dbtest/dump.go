package dbtest

import (
	"fmt"
	"slices"
	"testing"

	"gorm.io/gorm"
)

// Dump returns every row of table as one line of text, sorted, for "nothing
// changed" comparisons of whole tables before and after an operation.
func Dump(tb testing.TB, db *gorm.DB, table string) []string {
	tb.Helper()
	rows, err := db.Table(table).Rows()
	if err != nil {
		tb.Fatalf("dbtest: dump %s: %v", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		tb.Fatalf("dbtest: dump %s: %v", table, err)
	}
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			tb.Fatalf("dbtest: dump %s: %v", table, err)
		}
		lines = append(lines, fmt.Sprint(vals...))
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("dbtest: dump %s: %v", table, err)
	}
	slices.Sort(lines)
	return lines
}
