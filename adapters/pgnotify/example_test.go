package pgnotify_test

import (
	"log"
	"os"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/kiops/iam/adapters/pgnotify"
)

// A replica listens for the version numbers other replicas announce after
// each committed change, and catches up on every (re)connection, since
// notifications sent while it was not listening are lost.
func ExampleStart() {
	db, err := gorm.Open(postgres.Open(os.Getenv("DATABASE_URL")), &gorm.Config{})
	if err != nil {
		log.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		log.Fatal(err)
	}
	// The listener holds one of these for as long as it runs.
	sqlDB.SetMaxOpenConns(10)

	l, err := pgnotify.Start(db, pgnotify.Config{
		Channel: "kiops_iam_policy",
		OnConnect: func() {
			log.Print("catch up: reload whatever changed since the last version seen")
		},
		OnNotify: func(version string) {
			log.Printf("apply changes up to version %s", version)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	// Health checks report whether notifications are arriving.
	st := l.State()
	log.Printf("pgnotify: %v since %v (last error: %v)", st.Status, st.Since, st.Err)
}
