-- The attribute names an app declares (up to 10); NULL: any name, within the per-profile limit.
ALTER TABLE apps ADD COLUMN attribute_names text[];
