// The proxy's toxic strategies on their own: what each does to a connection's start and to the
// timed pieces bytes become, without sockets.
#include "agent/proxy/internal/toxics.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace faultline::agent::proxy::internal {
namespace {

using Toxic = v1::DependencyFault::Toxic;
using std::chrono::microseconds;
using std::chrono::milliseconds;

class ToxicsTest : public ::testing::Test {
 protected:
  std::vector<Chunk> Pieces(const std::string& bytes) { return {Chunk{bytes, 0, start_}}; }
  std::string Joined(const std::vector<Chunk>& pieces) {
    std::string out;
    for (const Chunk& p : pieces) out += p.data;
    return out;
  }
  const Time start_ = SteadyClock::now();
  std::mt19937_64 rng_{42};
};

TEST_F(ToxicsTest, LatencyDelaysEveryPieceByTheLatency) {
  Toxic t;
  t.mutable_latency()->set_latency_us(5000);
  auto pieces = Pieces("abc");
  MakeFlowToxic(t)->Shape(pieces, rng_);
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_EQ(pieces[0].release - start_, microseconds(5000));
}

TEST_F(ToxicsTest, SlicerCutsIntoSpacedPiecesAndRecordsTheSmallest) {
  Toxic t;
  t.mutable_slicer()->set_average_size(4);
  t.mutable_slicer()->set_delay_us(100);
  auto toxic = MakeFlowToxic(t);
  ToxicEffects e;
  toxic->Activate(start_, e);
  EXPECT_EQ(e.min_piece, 4u);
  EXPECT_EQ(e.cutters, 1u);
  auto pieces = Pieces("0123456789");
  toxic->Shape(pieces, rng_);
  ASSERT_EQ(pieces.size(), 3u);  // 4 + 4 + 2
  EXPECT_EQ(Joined(pieces), "0123456789");
  EXPECT_EQ(pieces[2].release - pieces[0].release, microseconds(200));
}

TEST_F(ToxicsTest, BandwidthPacesPiecesAtTheRateAcrossCalls) {
  Toxic t;
  t.mutable_bandwidth()->set_rate_bytes_per_second(1000);  // pieces of 20 bytes (1/50 s)
  auto toxic = MakeFlowToxic(t);
  auto first = Pieces(std::string(40, 'x'));
  toxic->Shape(first, rng_);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[1].release - start_, milliseconds(40));
  // The link is still busy: bytes arriving at the same instant wait behind the first ones.
  auto second = Pieces(std::string(20, 'y'));
  toxic->Shape(second, rng_);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].release - start_, milliseconds(60));
}

TEST_F(ToxicsTest, ConnectionWideToxicsFoldTheirEffectAtTheStart) {
  ToxicEffects e;
  Toxic reset, timeout, slow, limit, tighter;
  reset.mutable_reset_peer()->set_timeout_ms(30);
  timeout.mutable_timeout()->set_timeout_ms(70);
  slow.mutable_slow_close()->set_delay_ms(90);
  limit.mutable_limit_data()->set_bytes(1000);
  tighter.mutable_limit_data()->set_bytes(10);
  for (const Toxic* t : {&reset, &timeout, &slow, &limit, &tighter}) {
    MakeFlowToxic(*t)->Activate(start_, e);
  }
  EXPECT_EQ(e.reset_at - start_, milliseconds(30));
  EXPECT_EQ(e.close_at - start_, milliseconds(70));
  EXPECT_TRUE(e.discard);
  EXPECT_EQ(e.slow_close_ms, 90u);
  EXPECT_EQ(e.limit, 10u);  // the tightest limit wins
  // None of them reshapes bytes.
  auto pieces = Pieces("abc");
  MakeFlowToxic(reset)->Shape(pieces, rng_);
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_EQ(pieces[0].release, start_);
}

TEST_F(ToxicsTest, ChunkCostCountsTheQueueSlotAndTheHeapBlock) {
  Chunk tiny{"x", 0, start_};
  Chunk large{std::string(1000, 'x'), 0, start_};
  // A 1-byte slice is dominated by its bookkeeping, not its byte.
  EXPECT_GE(ChunkCost(tiny), sizeof(Chunk));
  EXPECT_GE(ChunkCost(large), 1000 + sizeof(Chunk));
}

}  // namespace
}  // namespace faultline::agent::proxy::internal
