package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/casbin/casbin/v2"

	iam "github.com/kiops/iam"
	"github.com/kiops/iam/authz"
)

// Config says what Run measures.
type Config struct {
	Scales      []int  // users at each scale point
	PostgresDSN string // a server where schemas may be created; "" skips PostgreSQL
	TempDir     string // where SQLite files go ("" for the system's)
	Writes      int    // operations per write measurement
	Log         io.Writer
}

// Scale holds everything measured at one scale point.
type Scale struct {
	Users, Orgs, Rules int

	Engine, EngineParallel, Service        testing.BenchmarkResult
	Casbin, CasbinCached, CasbinParallel   testing.BenchmarkResult
	EngineHeap, CrossCheckHeap, CasbinHeap uint64

	DBs []DBScale
}

// DBScale holds what was measured on one database at one scale point.
type DBScale struct {
	Kind                                     string
	Import                                   time.Duration
	Startup, CasbinStartup                   time.Duration
	Writes                                   map[string]Latency
	AddPolicy                                Latency
	ListMembers, ListMembersWith, ListAccess testing.BenchmarkResult
}

// Report is the outcome of Run.
type Report struct {
	Machine    string
	Scales     []Scale
	Middleware struct{ Bare, Guarded, GuardedParallel testing.BenchmarkResult }
	Took       time.Duration
}

// Run measures the module and plain Casbin side by side at every scale
// point of cfg and returns the figures; Markdown prints them.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	start := time.Now()
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "%s  %s\n", time.Since(start).Round(time.Second), fmt.Sprintf(format, args...))
	}
	rep := &Report{Machine: machine()}
	for _, n := range cfg.Scales {
		sc, err := runScale(ctx, cfg, n, logf)
		if err != nil {
			return nil, err
		}
		rep.Scales = append(rep.Scales, *sc)
	}
	logf("middleware")
	rep.Middleware.Bare = testing.Benchmark(MiddlewareBare)
	rep.Middleware.Guarded = testing.Benchmark(MiddlewareGuarded)
	rep.Middleware.GuardedParallel = testing.Benchmark(MiddlewareGuardedParallel)
	rep.Took = time.Since(start)
	return rep, nil
}

func runScale(ctx context.Context, cfg Config, n int, logf func(string, ...any)) (*Scale, error) {
	w := Generate(n, 1)
	reqs := w.Requests(1 << 16)
	sc := &Scale{Users: len(w.Users), Orgs: len(w.Orgs)}
	for range w.Rules() {
		sc.Rules++
	}
	logf("users=%d: engine", sc.Users)
	var engine *authz.Engine
	var err error
	if sc.EngineHeap, engine, err = HeapGrowth(func() (*authz.Engine, error) { return loadedEngine(w) }); err != nil {
		return nil, err
	}
	if wrong := Warm(EngineChecker{engine}, reqs); wrong != 0 {
		return nil, fmt.Errorf("bench: the engine answered %d requests wrong", wrong)
	}
	sc.Engine = testing.Benchmark(func(b *testing.B) { CheckSerial(b, EngineChecker{engine}, reqs) })
	sc.EngineParallel = testing.Benchmark(func(b *testing.B) { CheckParallel(b, EngineChecker{engine}, reqs) })
	engine = nil
	if sc.CrossCheckHeap, _, err = HeapGrowth(func() (*authz.Engine, error) { return loadedEngine(w, authz.WithCasbinCrossCheck()) }); err != nil {
		return nil, err
	}

	kinds := []func() (*Database, error){func() (*Database, error) { return OpenSQLiteFile(cfg.TempDir) }}
	if cfg.PostgresDSN != "" {
		kinds = append(kinds, func() (*Database, error) { return OpenPostgres(cfg.PostgresDSN) })
	}
	for i, open := range kinds {
		last := i == len(kinds)-1
		d, err := open()
		if err != nil {
			return nil, err
		}
		ds, enf, err := runDB(ctx, cfg, d, w, reqs, sc, last, logf)
		if cerr := d.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("bench: %s, %d users: %w", d.Kind, sc.Users, err)
		}
		sc.DBs = append(sc.DBs, *ds)
		if enf != nil {
			logf("users=%d: casbin checks", sc.Users)
			sc.Casbin = testing.Benchmark(func(b *testing.B) { CheckSerial(b, CasbinChecker{enf.Enforcer}, reqs) })
			sc.CasbinParallel = testing.Benchmark(func(b *testing.B) { CheckParallel(b, CasbinChecker{enf.Enforcer}, reqs) })
			if wrong := Warm(CasbinChecker{enf}, reqs); wrong != 0 {
				return nil, fmt.Errorf("bench: casbin answered %d requests wrong", wrong)
			}
			sc.CasbinCached = testing.Benchmark(func(b *testing.B) { CheckSerial(b, CasbinChecker{enf}, reqs) })
		}
	}
	return sc, nil
}

func loadedEngine(w *Workload, opts ...authz.Option) (*authz.Engine, error) {
	e, err := authz.NewEngine(opts...)
	if err != nil {
		return nil, err
	}
	return e, e.Load(w.Rows())
}

// runDB populates d with w and measures start-up, writes and listings on
// it. On the last database it keeps the Casbin enforcer it loaded (for
// the check benchmarks) and measures Service.Check.
func runDB(ctx context.Context, cfg Config, d *Database, w *Workload, reqs []Request, sc *Scale, last bool, logf func(string, ...any)) (*DBScale, *casbin.CachedEnforcer, error) {
	ds := &DBScale{Kind: d.Kind}
	logf("users=%d, %s: import", sc.Users, d.Kind)
	svc, err := iam.New(ctx, d.DB)
	if err != nil {
		return nil, nil, err
	}
	if ds.Import, err = Populate(ctx, svc, d.DB, w); err != nil {
		return nil, nil, err
	}
	svc.Close()

	// Start-up: a fresh pool, as a new process would open.
	logf("users=%d, %s: start-up", sc.Users, d.Kind)
	db2, err := d.Reopen()
	if err != nil {
		return nil, nil, err
	}
	defer CloseDB(db2)
	t := time.Now()
	if svc, err = iam.New(ctx, db2); err != nil {
		return nil, nil, err
	}
	ds.Startup = time.Since(t)
	defer svc.Close()
	if wrong := Warm(serviceChecker{svc}, reqs); wrong != 0 {
		return nil, nil, fmt.Errorf("the loaded Service answered %d requests wrong", wrong)
	}
	if last {
		sc.Service = testing.Benchmark(func(b *testing.B) { CheckSerial(b, serviceChecker{svc}, reqs) })
	}

	logf("users=%d, %s: casbin start-up", sc.Users, d.Kind)
	t = time.Now()
	heap, enf, err := HeapGrowth(func() (*casbin.CachedEnforcer, error) { return LoadCasbin(d.DB) })
	if err != nil {
		return nil, nil, err
	}
	ds.CasbinStartup = time.Since(t) // includes HeapGrowth's collections, a few ms
	sc.CasbinHeap = heap
	if !last {
		enf = nil
	}

	logf("users=%d, %s: listings", sc.Users, d.Kind)
	admin, org := w.Users[len(w.Users)-1].ID, w.Orgs[len(w.Orgs)/2]
	ds.ListMembers = testing.Benchmark(func(b *testing.B) { ListMembers(b, svc, admin, org) })
	ds.ListMembersWith = testing.Benchmark(func(b *testing.B) { ListMembersWith(b, svc, admin, org, authz.VPN) })
	ds.ListAccess = testing.Benchmark(func(b *testing.B) { ListAccess(b, svc, admin, org, authz.VPN) })

	logf("users=%d, %s: writes", sc.Users, d.Kind)
	if ds.Writes, err = WriteLatencies(ctx, svc, w, cfg.Writes); err != nil {
		return nil, nil, err
	}
	a, err := CasbinAdapter(d.DB)
	if err != nil {
		return nil, nil, err
	}
	if ds.AddPolicy, err = AddPolicyLatency(ctx, w, a, cfg.Writes); err != nil {
		return nil, nil, err
	}
	return ds, enf, nil
}

// serviceChecker checks through Service.Check.
type serviceChecker struct{ *iam.Service }

func (s serviceChecker) Check(u authz.UserID, o authz.OrgID, c authz.Category) bool {
	return s.Service.Check(context.Background(), u, o, c).Allowed
}

// machine describes where the report ran.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb uint64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
		}
	}
	return fmt.Sprintf("%s, %d cores (GOMAXPROCS %d)%s, %s %s/%s", cpu, runtime.NumCPU(), runtime.GOMAXPROCS(0), mem, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
