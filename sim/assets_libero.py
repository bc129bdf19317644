"""Proxy assets for the LIBERO-90 / LIBERO-10 categories (books, mugs, frypan, moka pot, tray,
white cabinet, microwave, two-layer shelf, desk caddy), registered into :data:`sim.assets.ASSETS`.

Built from boxes and cylinders with :class:`mujoco.MjSpec` like :mod:`sim.assets`, at the sizes
measured from the collision geometry of LIBERO's public asset files (``libero/libero/assets/…``;
no file or mesh is copied). ``docs/assets.md`` tables every category's size against LIBERO's, its
articulations, regions and departures; each :class:`~sim.assets.AssetInfo`'s ``note`` says where
the proxy departs.

Frames (see :mod:`sim.assets` for the common conventions):

* **Microwave, two-layer shelf, desk caddy** are drawn in LIBERO's own asset frame: their front
  (door, open side) is local **-y**, so a task's ``:yaw_rotation`` turns them as LIBERO does
  (``yaw = 0`` at the table's +y side and ``yaw = pi`` at its -y side both face the table's centre).
* **White cabinet** reuses the wooden cabinet's builder (front = +x) with
  ``frame_yaw = -pi/2``, so its drawers also face LIBERO's local -y.
* **Objects with a handle** (mugs, frypan, moka pot): the body origin is the centre of the main
  body (the cup, the pan, the pot), not of the box that includes the handle; ``half_extents`` is
  the box symmetric about the origin that covers the handle, and a site ``"<name>_handle"`` marks
  the middle of the handle (its x axis points away from the body along the handle).

Articulation: the microwave door is a hinge ``"<name>_door_hinge"`` about the door's vertical
edge; ``q = 0`` is shut and ``q > 0`` swings it open (outward, toward local -y), range
:data:`sim.assets.DOOR_RANGE`. ``Open`` / ``Close`` compare ``q`` with
:data:`sim.assets.DOOR_OPEN_THRESHOLD` / :data:`sim.assets.DOOR_CLOSED_THRESHOLD`. The door
handle site ``"<name>_door_handle"`` (on the door body) has its x axis along the door's outward
normal, its y axis along the door (away from the hinge) and z up; the hinge axis site is
``"<name>_door_hinge_axis"``.

Region kinds: the caddy's bays and the tray are ``"container"`` (open-top, like the basket: placed
into from above). Two kinds are added to :data:`sim.assets.REGION_KIND_TAGS`, both tagged
``{"container"}``: ``"shelf"`` (a covered level of the shelf, reached from its open front, not from
above) and ``"enclosure"`` (the microwave's heating region, reachable only through the open door).
``In`` holds for all of them as for drawers (:mod:`sim.predicates`).
"""

from __future__ import annotations

import math
from functools import partial

import mujoco

from sim.assets import (
    _BOX,
    _CYL,
    ASSETS,
    DOOR_RANGE,
    REGION_KIND_TAGS,
    AssetInfo,
    BuiltAsset,
    CabinetDims,
    GraspInfo,
    _build_box,
    _build_cabinet,
    _fixture_geom,
    _free,
    _object_geom,
    _region_site,
    _ring,
    _set_masses,
    _visual_mesh,
    yaw_quat,
)

REGION_KIND_TAGS.update({
    "shelf": frozenset({"container"}),
    "enclosure": frozenset({"container"}),
})

G = ("graspable",)


def _handle_site(body, name: str, pos) -> str:
    site = f"{name}_handle"
    body.add_site(name=site, pos=[float(v) for v in pos], size=[0.006, 0, 0],
                  rgba=[1, 0, 0, 0.5], group=5)
    return site


# ------------------------------------------------------------------------------------------
# objects

_MUG_APOTHEM = 0.036
_MUG_WALL = 0.005
_MUG_FLOOR = 0.006
_MUG_HANDLE_OUT = 0.028   # handle bar centre beyond the cup's outer wall


def _mug_half(h: float) -> tuple[float, float, float]:
    reach = _MUG_APOTHEM + _MUG_HANDLE_OUT + 0.005
    return (reach, reach, h / 2)


def _build_mug(info: AssetInfo, spec, body, name) -> BuiltAsset:
    """A 12-sided open cup (origin on its axis, mid-height) with a handle loop on its +x side."""
    hz = info.half_extents[2]
    inner = _MUG_APOTHEM - _MUG_WALL
    c = info.rgba
    geoms = [_object_geom(body, _CYL, (inner + 0.001, _MUG_FLOOR / 2), (0, 0, -hz + _MUG_FLOOR / 2),
                          c)]
    geoms += _ring(body, 12, inner, _MUG_WALL, -hz + 0.001, hz, c)
    _set_masses(geoms, 0.85 * info.mass)
    bottom = -hz + _MUG_FLOOR
    _visual_mesh(spec, body, name, 12, [(0.0, -hz), (_MUG_APOTHEM, -hz), (_MUG_APOTHEM, hz),
                                         (inner, hz), (inner, bottom), (0.0, bottom)], c, geoms)
    # handle: a vertical bar joined to the wall by two horizontal arms
    bar_x = _MUG_APOTHEM + _MUG_HANDLE_OUT
    hz_bar = min(0.03, 0.3 * 2 * hz)
    zc = hz * 0.2
    hg = [_object_geom(body, _BOX, (0.005, 0.006, hz_bar), (bar_x, 0, zc), c)]
    arm = (_MUG_HANDLE_OUT + 0.004) / 2
    for s in (-1, 1):
        hg.append(_object_geom(body, _BOX, (arm, 0.006, 0.005),
                               (_MUG_APOTHEM - 0.002 + arm, 0, zc + s * (hz_bar - 0.005)), c))
    _set_masses(hg, 0.15 * info.mass)
    site = _handle_site(body, name, (bar_x, 0, zc))
    return BuiltAsset(name, _free(body, name), {}, (name,), {site: site})


def _mug_grasp(h: float) -> GraspInfo:
    r = _MUG_APOTHEM / math.cos(math.pi / 12)
    return GraspInfo((r, r, h / 2), grasp_height=h - 0.022, grasp_width=2 * _MUG_APOTHEM, axis="y")


_PAN_APOTHEM = 0.095
_PAN_WALL = 0.006
_PAN_H = 0.04
_PAN_FLOOR = 0.006
_PAN_HANDLE = (0.07, 0.012, 0.007)   # half sizes of the handle bar (along x, y, z)
_PAN_HANDLE_Z = 0.033                # handle bar centre above the pan's bottom
_PAN_HANDLE_X = _PAN_APOTHEM + _PAN_HANDLE[0] - 0.002   # handle bar centre from the pan's centre


def _build_frypan(info: AssetInfo, spec, body, name) -> BuiltAsset:
    """A 16-sided shallow pan (origin at its centre, mid-height) with a straight handle along +x."""
    hz = _PAN_H / 2
    inner = _PAN_APOTHEM - _PAN_WALL
    c = info.rgba
    geoms = [_object_geom(body, _CYL, (inner + 0.001, _PAN_FLOOR / 2), (0, 0, -hz + _PAN_FLOOR / 2),
                          c)]
    geoms += _ring(body, 16, inner, _PAN_WALL, -hz + 0.001, hz, c)
    bottom = -hz + _PAN_FLOOR
    hpos = (_PAN_HANDLE_X, 0.0, -hz + _PAN_HANDLE_Z)
    handle = _object_geom(body, _BOX, _PAN_HANDLE, hpos, (0.1, 0.1, 0.1, 1))
    _set_masses(geoms + [handle], info.mass)
    _visual_mesh(spec, body, name, 16, [(0.0, -hz), (_PAN_APOTHEM, -hz), (_PAN_APOTHEM, hz),
                                         (inner, hz), (inner, bottom), (0.0, bottom)], c, geoms)
    site = _handle_site(body, name, hpos)
    return BuiltAsset(name, _free(body, name), {}, (name,), {site: site})


_MOKA = dict(r_low=0.037, h_low=0.07, r_waist=0.027, h_waist=0.015, half_up=0.031, h_up=0.055,
             r_lid=0.012, h_lid=0.01)
_MOKA_H = _MOKA["h_low"] + _MOKA["h_waist"] + _MOKA["h_up"] + _MOKA["h_lid"]


def _build_moka(info: AssetInfo, spec, body, name) -> BuiltAsset:
    """Lower boiler (cylinder), waist, square upper chamber (flat faces for the pads), lid knob,
    and a handle on the upper chamber's +x side. Origin on the axis at mid-height."""
    k = _MOKA
    hz = _MOKA_H / 2
    c, dark = info.rgba, (0.1, 0.1, 0.1, 1)
    z = -hz
    geoms = [_object_geom(body, _CYL, (k["r_low"], k["h_low"] / 2), (0, 0, z + k["h_low"] / 2), c)]
    z += k["h_low"]
    geoms.append(_object_geom(body, _CYL, (k["r_waist"], k["h_waist"] / 2),
                              (0, 0, z + k["h_waist"] / 2), c))
    z += k["h_waist"]
    up_c = z + k["h_up"] / 2
    geoms.append(_object_geom(body, _BOX, (k["half_up"], k["half_up"], k["h_up"] / 2),
                              (0, 0, up_c), c))
    z += k["h_up"]
    geoms.append(_object_geom(body, _CYL, (k["r_lid"], k["h_lid"] / 2), (0, 0, z + k["h_lid"] / 2),
                              dark))
    hpos = (k["half_up"] + 0.022, 0.0, up_c)
    geoms.append(_object_geom(body, _BOX, (0.022, 0.007, 0.022), hpos, dark))
    _set_masses(geoms, info.mass)
    site = _handle_site(body, name, hpos)
    return BuiltAsset(name, _free(body, name), {}, (name,), {site: site})


_TRAY_OUT = (0.145, 0.0825)   # outer half sizes (x, y)
_TRAY_H = 0.04
_TRAY_WALL = 0.008
_TRAY_FLOOR = 0.008


def _build_tray(info: AssetInfo, spec, body, name) -> BuiltAsset:
    hx, hy = _TRAY_OUT
    hz = _TRAY_H / 2
    t = _TRAY_WALL
    c = info.rgba
    geoms = [
        _object_geom(body, _BOX, (hx, hy, _TRAY_FLOOR / 2), (0, 0, -hz + _TRAY_FLOOR / 2), c),
        _object_geom(body, _BOX, (t / 2, hy, hz), (hx - t / 2, 0, 0), c),
        _object_geom(body, _BOX, (t / 2, hy, hz), (-hx + t / 2, 0, 0), c),
        _object_geom(body, _BOX, (hx - t, t / 2, hz), (0, hy - t / 2, 0), c),
        _object_geom(body, _BOX, (hx - t, t / 2, hz), (0, -hy + t / 2, 0), c),
    ]
    _set_masses(geoms, info.mass)
    site = f"{name}_contain_region"
    _region_site(body, site, (0, 0, -hz + _TRAY_FLOOR), (hx - t, hy - t, 0.05))
    return BuiltAsset(name, _free(body, name), {"contain_region": (site, name)}, (name,))


# ------------------------------------------------------------------------------------------
# fixtures (LIBERO frame: front = -y)

# microwave: outer box and cavity, LIBERO frame (x across, y depth with the door at -y, z up)
_MW_X = (-0.1725, 0.1725)
_MW_Y = (-0.088, 0.111)
_MW_H = 0.19
_MW_CAV_X = (-0.1435, 0.0635)
_MW_CAV_Y = (-0.088, 0.0805)
_MW_CAV_Z = (0.024, 0.168)
_MW_DOOR_T = 0.016
_MW_HANDLE_OUT = 0.035   # handle bar centre in front of the door's outer face
_MW_HANDLE_X = 0.045     # handle bar x in the closed door, measured back from the door's free end


def _box_between(body, lo, hi, rgba, fg=_fixture_geom):
    half = [(b - a) / 2 for a, b in zip(lo, hi)]
    pos = [(a + b) / 2 for a, b in zip(lo, hi)]
    return fg(body, _BOX, half, pos, rgba)


def _build_microwave(info: AssetInfo, spec, body, name) -> BuiltAsset:
    c, dark = info.rgba, (0.15, 0.15, 0.15, 1)
    (x0, x1), (y0, y1) = _MW_X, _MW_Y
    (cx0, cx1), (cy0, cy1), (cz0, cz1) = _MW_CAV_X, _MW_CAV_Y, _MW_CAV_Z
    _box_between(body, (x0, y0, 0), (x1, y1, cz0), c)                 # floor
    _box_between(body, (x0, y0, cz1), (x1, y1, _MW_H), c)             # roof
    _box_between(body, (x0, y0, cz0), (cx0, y1, cz1), c)              # left wall (hinge side)
    _box_between(body, (cx1, y0, cz0), (x1, y1, cz1), dark)           # control panel side
    _box_between(body, (cx0, cy1, cz0), (cx1, y1, cz1), c)            # back
    # door: hinge on the left front edge, panel spanning the cavity opening
    hinge = (x0, y0 - _MW_DOOR_T)
    door = body.add_body(name=f"{name}_door", pos=[hinge[0], hinge[1], 0.0])
    jn = f"{name}_door_hinge"
    door.add_joint(name=jn, type=mujoco.mjtJoint.mjJNT_HINGE, axis=[0, 0, -1], pos=[0, 0, 0],
                   range=list(DOOR_RANGE), limited=mujoco.mjtLimited.mjLIMITED_TRUE,
                   damping=0.3, frictionloss=0.02, armature=0.01)
    dw = cx1 + 0.02 - x0       # door width along x (covers the cavity and the side walls' front)
    _box_between(door, (0.002, 0.0, 0.004), (dw, _MW_DOOR_T, _MW_H - 0.004), dark)
    # handle: a vertical bar on two standoffs in front of the door, near its free end
    hxb = dw - _MW_HANDLE_X
    hzc = _MW_H / 2
    _fixture_geom(door, _BOX, (0.008, 0.008, 0.06), (hxb, -_MW_HANDLE_OUT, hzc), (0.8, 0.8, 0.8, 1))
    so = (_MW_HANDLE_OUT - 0.008) / 2
    for s in (-1, 1):
        _fixture_geom(door, _BOX, (0.005, so, 0.005), (hxb, -so, hzc + s * 0.045),
                      (0.8, 0.8, 0.8, 1))
    hsite = f"{name}_door_handle"
    # site frame: x = outward normal of the shut door (-y), y = along the door away from the
    # hinge (+x), z = up
    door.add_site(name=hsite, pos=[hxb, -_MW_HANDLE_OUT, hzc], quat=yaw_quat(-math.pi / 2),
                  size=[0.006, 0, 0], rgba=[1, 0, 0, 0.5], group=5)
    asite = f"{name}_door_hinge_axis"
    door.add_site(name=asite, pos=[0, 0, hzc], size=[0.004, 0, 0], rgba=[0, 0, 1, 0.5], group=5)
    spec.add_exclude(bodyname1=name, bodyname2=door.name)
    heat = f"{name}_heating_region"
    _region_site(body, heat, ((cx0 + cx1) / 2, (cy0 + cy1) / 2, cz0),
                 ((cx1 - cx0) / 2, (cy1 - cy0) / 2, (cz1 - cz0) / 2))
    top = f"{name}_top_side"
    _region_site(body, top, ((x0 + x1) / 2, (y0 + y1) / 2, _MW_H),
                 ((x1 - x0) / 2 - 0.02, (y1 - y0) / 2 - 0.02, 0.05))
    return BuiltAsset(name, {"door": jn}, {"heating_region": (heat, name), "top_side": (top, name)},
                      (name, door.name), {hsite: hsite, asite: asite})


# two-layer shelf, LIBERO frame: open front at -y, open bottom bay on the table
_SH_X = (-0.163, 0.172)
_SH_Y = (-0.079, 0.111)
_SH_SIDE_T = 0.014
_SH_BACK_T = 0.006
_SH_MID = (0.065, 0.075)     # middle board z span
_SH_TOP = (0.203, 0.213)     # top board z span


def _build_shelf(info: AssetInfo, spec, body, name) -> BuiltAsset:
    c = info.rgba
    (x0, x1), (y0, y1) = _SH_X, _SH_Y
    t = _SH_SIDE_T
    _box_between(body, (x0, y0, 0), (x0 + t, y1, _SH_TOP[0]), c)
    _box_between(body, (x1 - t, y0, 0), (x1, y1, _SH_TOP[0]), c)
    _box_between(body, (x0 + t, y1 - _SH_BACK_T, 0), (x1 - t, y1, _SH_TOP[0]), c)
    _box_between(body, (x0 + t, y0, _SH_MID[0]), (x1 - t, y1 - _SH_BACK_T, _SH_MID[1]), c)
    _box_between(body, (x0 - 0.005, y0, _SH_TOP[0]), (x1 + 0.005, y1, _SH_TOP[1]), c)
    ix0, ix1 = x0 + t, x1 - t
    iy0, iy1 = y0, y1 - _SH_BACK_T
    cx, cy = (ix0 + ix1) / 2, (iy0 + iy1) / 2
    hx, hy = (ix1 - ix0) / 2 - 0.005, (iy1 - iy0) / 2 - 0.005
    regions = {}
    for reg, z0, z1 in (("bottom_region", 0.0, _SH_MID[0]), ("top_region", _SH_MID[1], _SH_TOP[0])):
        site = f"{name}_{reg}"
        _region_site(body, site, (cx, cy, z0), (hx, hy, (z1 - z0) / 2))
        regions[reg] = (site, name)
    site = f"{name}_top_side"
    _region_site(body, site, ((x0 + x1) / 2, (y0 + y1) / 2, _SH_TOP[1]),
                 ((x1 - x0) / 2 - 0.01, (y1 - y0) / 2 - 0.01, 0.05))
    regions["top_side"] = (site, name)
    return BuiltAsset(name, {}, regions, (name,))


# desk caddy, LIBERO frame: long axis y; four open-top bays
_CD_X = (-0.0755, 0.0755)
_CD_Y = (-0.222, 0.222)
_CD_BASE = 0.01
_CD_WALL_T = 0.008
_CD_WALL_H = 0.08
_CD_MID_H = 0.06
_CD_DIV_Y = 0.074            # |y| of the dividers between the middle and the side bays
_CD_MID_X = 0.0              # x of the divider between the front and back bays


def _build_caddy(info: AssetInfo, spec, body, name) -> BuiltAsset:
    c = info.rgba
    (x0, x1), (y0, y1) = _CD_X, _CD_Y
    t, H = _CD_WALL_T, _CD_WALL_H
    _box_between(body, (x0, y0, 0), (x1, y1, _CD_BASE), c)
    _box_between(body, (x0, y0, _CD_BASE), (x0 + t, y1, H), c)          # front (-x)
    _box_between(body, (x1 - t, y0, _CD_BASE), (x1, y1, H), c)          # back (+x)
    _box_between(body, (x0 + t, y0, _CD_BASE), (x1 - t, y0 + t, H), c)  # right end (-y)
    _box_between(body, (x0 + t, y1 - t, _CD_BASE), (x1 - t, y1, H), c)  # left end (+y)
    for s in (-1, 1):
        _box_between(body, (x0 + t, s * _CD_DIV_Y - t / 2, _CD_BASE),
                     (x1 - t, s * _CD_DIV_Y + t / 2, H), c)
    _box_between(body, (_CD_MID_X - t / 2, -_CD_DIV_Y + t / 2, _CD_BASE),
                 (_CD_MID_X + t / 2, _CD_DIV_Y - t / 2, _CD_MID_H), c)
    ix0, ix1 = x0 + t, x1 - t
    bays = {
        "right_contain_region": ((ix0, y0 + t), (ix1, -_CD_DIV_Y - t / 2)),
        "left_contain_region": ((ix0, _CD_DIV_Y + t / 2), (ix1, y1 - t)),
        "back_contain_region": ((_CD_MID_X + t / 2, -_CD_DIV_Y + t / 2), (ix1, _CD_DIV_Y - t / 2)),
        "front_contain_region": ((ix0, -_CD_DIV_Y + t / 2), (_CD_MID_X - t / 2, _CD_DIV_Y - t / 2)),
    }
    regions = {}
    for reg, ((a0, b0), (a1, b1)) in bays.items():
        site = f"{name}_{reg}"
        _region_site(body, site, ((a0 + a1) / 2, (b0 + b1) / 2, _CD_BASE),
                     ((a1 - a0) / 2, (b1 - b0) / 2, (H - _CD_BASE) / 2))
        regions[reg] = (site, name)
    return BuiltAsset(name, {}, regions, (name,))


WHITE_CABINET = CabinetDims(depth=0.19, width=0.25, wall=0.01, base=0.01, slot=0.065, sep=0.005,
                            top=0.01)
"""LIBERO's white cabinet: 0.255 x 0.19 x 0.223 m, three 0.069 m drawers travelling 0.16 m."""


# ------------------------------------------------------------------------------------------
# registry


def _obj(category, tags, libero_size, half, mass, rgba, builder, grasp=None, regions=None,
         note=""):
    return AssetInfo(category, "object", frozenset(tags), libero_size, half, mass, grasp,
                     regions or {}, rgba, builder, note)


def _book_grasp(half):
    hx, hy, hz = half
    return GraspInfo(half, grasp_height=2 * hz - 0.02, grasp_width=2 * hx, axis="x")


_MUG_NOTE = ("12-sided open cup 0.072 m across its flats (LIBERO's is {w} m across) so the Panda's "
             "0.08 m gripper takes it across the cup, fingers closing along the cup's y (the handle "
             "is on +x, site '<name>_handle'); origin on the cup's axis; {h}")
_BOOK_NOTE = ("upright box, spine vertical, thin along x; LIBERO stands its book mesh on an "
              "edge ({l}); grasped across its thickness near the top")

LIBERO_ASSETS: dict[str, AssetInfo] = {a.category: a for a in [
    _obj("black_book", G, (0.029, 0.134, 0.11), (0.015, 0.06, 0.055), 0.12, (0.1, 0.1, 0.12, 1),
         _build_box, _book_grasp((0.015, 0.06, 0.055)),
         note=_BOOK_NOTE.format(l="0.029 x 0.134 x 0.11 m") + "; 0.12 m long (LIBERO 0.134) so it "
         "fits a caddy bay"),
    _obj("yellow_book", G, (0.024, 0.122, 0.098), (0.013, 0.055, 0.05), 0.1, (0.95, 0.8, 0.1, 1),
         _build_box, _book_grasp((0.013, 0.055, 0.05)),
         note=_BOOK_NOTE.format(l="0.024 x 0.122 x 0.098 m") + "; 0.11 m long, 0.026 thick"),
    _obj("porcelain_mug", G, (0.125, 0.096, 0.106), _mug_half(0.10), 0.15, (0.93, 0.93, 0.9, 1),
         _build_mug, _mug_grasp(0.10), note=_MUG_NOTE.format(w=0.096, h="0.10 m tall")),
    _obj("red_coffee_mug", G, (0.123, 0.093, 0.133), _mug_half(0.12), 0.15, (0.75, 0.1, 0.1, 1),
         _build_mug, _mug_grasp(0.12), note=_MUG_NOTE.format(w=0.093, h="0.12 m tall (LIBERO 0.133)")),
    _obj("white_yellow_mug", G, (0.14, 0.106, 0.103), _mug_half(0.095), 0.15,
         (0.95, 0.9, 0.55, 1), _build_mug, _mug_grasp(0.095),
         note=_MUG_NOTE.format(w=0.106, h="0.095 m tall (LIBERO 0.103)")),
    _obj("chefmate_8_frypan", G + ("surface",), (0.356, 0.204, 0.058),
         (_PAN_APOTHEM + 2 * _PAN_HANDLE[0], _PAN_APOTHEM / math.cos(math.pi / 16), _PAN_H / 2),
         0.3, (0.2, 0.2, 0.22, 1), _build_frypan,
         GraspInfo(_PAN_HANDLE, grasp_height=_PAN_HANDLE_Z, grasp_width=2 * _PAN_HANDLE[1],
                   axis="y", offset=(_PAN_HANDLE_X, 0.0)),
         note="16-sided pan 0.19 m across, 0.04 m deep, straight level handle 0.14 m long along "
              "+x (LIBERO's rises to 0.059 m); grasp info describes the handle bar (site "
              "'<name>_handle', GraspInfo.offset), fingers closing across it along y; origin at "
              "the pan's centre"),
    _obj("moka_pot", G, (0.081, 0.148, 0.152),
         (_MOKA["half_up"] + 0.044, _MOKA["r_low"], _MOKA_H / 2), 0.3, (0.7, 0.7, 0.72, 1),
         _build_moka,
         GraspInfo((_MOKA["half_up"],) * 2 + (_MOKA["h_up"] / 2,),
                   grasp_height=_MOKA_H - _MOKA["h_lid"] - 0.02, grasp_width=2 * _MOKA["half_up"],
                   axis="y"),
         note="0.074 m boiler, waist, square 0.062 m upper chamber (flat faces for the pads where "
              "LIBERO's is octagonal and 0.081 m across), 0.15 m tall, handle on +x; grasped "
              "across the upper chamber along y"),
    _obj("wooden_tray", ("container", "surface"), (0.297, 0.167, 0.082),
         (_TRAY_OUT[0], _TRAY_OUT[1], _TRAY_H / 2), 0.5, (0.65, 0.45, 0.25, 1), _build_tray,
         regions={"contain_region": "container"},
         note="open box 0.29 x 0.165 m with 0.04 m walls (LIBERO's rim with handles reaches "
              "0.08 m); not graspable, objects are put into it"),
    AssetInfo("white_cabinet", "fixture", frozenset(), (0.255, 0.19, 0.223),
              (WHITE_CABINET.depth / 2, WHITE_CABINET.width / 2, WHITE_CABINET.height / 2), 0.0,
              None, {"top_region": "drawer", "middle_region": "drawer", "bottom_region": "drawer",
                     "top_side": "surface"}, (0.93, 0.93, 0.9, 1),
              partial(_build_cabinet, dims=WHITE_CABINET),
              note="the wooden cabinet's builder at LIBERO's white-cabinet size (0.25 wide, 0.19 "
                   "deep, 0.225 tall, 0.065 m drawer slots, 0.16 m travel); drawn front = +x and "
                   "turned by frame_yaw = -pi/2 so the drawers face LIBERO's local -y",
              frame_yaw=-math.pi / 2),
    AssetInfo("microwave", "fixture", frozenset({"openable"}), (0.345, 0.263, 0.19),
              ((_MW_X[1] - _MW_X[0]) / 2, (_MW_Y[1] - _MW_Y[0]) / 2, _MW_H / 2), 0.0, None,
              {"heating_region": "enclosure", "top_side": "surface"}, (0.85, 0.85, 0.85, 1),
              _build_microwave,
              note="LIBERO's microwave box, cavity and door hinge (left front edge, 0..2.094 rad, "
                   "door at local -y); the handle is a box bar on standoffs 0.035 m in front of "
                   "the door; joint sign flipped (q > 0 = open)"),
    AssetInfo("wooden_two_layer_shelf", "fixture", frozenset(), (0.352, 0.191, 0.21),
              ((_SH_X[1] - _SH_X[0]) / 2, (_SH_Y[1] - _SH_Y[0]) / 2, _SH_TOP[1] / 2), 0.0, None,
              {"top_region": "shelf", "bottom_region": "shelf", "top_side": "surface"},
              (0.55, 0.38, 0.22, 1), _build_shelf,
              note="two side walls, back, a middle board at 0.065-0.075 m and a top board at "
                   "0.203-0.213 m, open at local -y; the bottom bay is the table under the "
                   "middle board (as LIBERO's bottom_region); boards 1 cm thick (LIBERO's 2-4 mm)"),
    AssetInfo("desk_caddy", "fixture", frozenset(), (0.151, 0.434, 0.168),
              ((_CD_X[1] - _CD_X[0]) / 2, (_CD_Y[1] - _CD_Y[0]) / 2, _CD_WALL_H / 2), 0.0, None,
              {r: "container" for r in ("front_contain_region", "back_contain_region",
                                          "left_contain_region", "right_contain_region")},
              (0.45, 0.5, 0.55, 1), _build_caddy,
              note="LIBERO's footprint and bay layout (right/left bays at local -y/+y, back/front "
                   "halves of the middle bay at local +x/-x), 0.444 m long; walls 0.08 m high "
                   "everywhere (LIBERO's reach 0.167 m at the back) so a book held near its top "
                   "is lowered in with the fingers above the walls"),
]}
"""The categories this module adds to :data:`sim.assets.ASSETS`."""

ASSETS.update(LIBERO_ASSETS)
