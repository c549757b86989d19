from chainercv_i3d.utils.mpi import rank_share


def test_rank_shares_are_disjoint_and_cover_everything_once():
    items = ['v{}'.format(i) for i in range(10)]
    for size in (1, 2, 3, 4, 11):
        shares = [rank_share(items, rank, size) for rank in range(size)]
        assert sorted(sum(shares, [])) == sorted(items)
        lengths = [len(share) for share in shares]
        assert max(lengths) - min(lengths) <= 1
