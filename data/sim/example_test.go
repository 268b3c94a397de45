package sim_test

import (
	"context"
	"fmt"

	"github.com/nudgehq/nudge/data/sim"
	"github.com/nudgehq/nudge/features"
)

func ExampleSim_Run() {
	s, err := sim.New(sim.Config{Seed: 1, Visitors: 200, Days: 14})
	if err != nil {
		panic(err)
	}
	events := 0
	sink := func(_ context.Context, evs []features.Event) error { events += len(evs); return nil }
	res, err := s.Run(context.Background(), sink, sim.NewRandomPolicy(1))
	if err != nil {
		panic(err)
	}
	oracle, _ := sim.PolicyValue(res.Truth, sim.OracleArms(res.Truth, -1))
	fmt.Println(res.Sessions == len(res.Decisions), events == res.Events, oracle > 0)
	// Output: true true true
}
